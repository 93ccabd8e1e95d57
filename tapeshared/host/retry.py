"""Bounded retries with backoff: the only importer of tenacity."""

import logging
import time
from typing import Any, Callable, Tuple, Type, TypeVar

from tapeshared.core.errors import TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")


def retry_call(func: Callable[[], T], attempts: int, first_wait: float = 0.5,
               max_wait: float = 5.0, what: str = "operation",
               on: Tuple[Type[BaseException], ...] = (TransientError,),
               sleep: Callable[[float], Any] = time.sleep) -> T:
    """Call func until it succeeds or attempts run out; re-raise the last error."""
    import tenacity

    def _log(state: "tenacity.RetryCallState") -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d of %d): %s", what, state.attempt_number,
                    attempts, exc)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=first_wait, max=max_wait),
        retry=tenacity.retry_if_exception_type(on),
        after=_log, reraise=True, sleep=sleep)  # the daemon's sleep feeds the watchdog
    return retrying(func)
