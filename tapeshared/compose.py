"""Composition root: the only place that builds real adapters."""

from tapeshared import discovery
from tapeshared.errors import ConfigError
from tapeshared.iet import IetBackend
from tapeshared.lock import ApplyLock
from tapeshared.model import Config
from tapeshared.reconcile import Backend, Reconciler
from tapeshared.runner import Runner


def backend(config: Config, runner: Runner) -> Backend:
    """The target backend the config names."""
    name = config.globals.backend
    if name == "iet":
        return IetBackend(config.globals, runner)
    raise ConfigError("backend %s is not available in this version" % name,
                      section="global", key="backend")


def reconciler(config: Config) -> Reconciler:
    """A reconciler wired to udev, the configured backend and the apply lock."""
    settings = config.globals
    return Reconciler(
        config, backend(config, Runner()), discovery.scan,
        lambda: ApplyLock(settings.lock_file, settings.lock_timeout))
