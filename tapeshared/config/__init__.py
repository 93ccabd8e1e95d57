"""Configuration (pure: reads files, runs nothing): tapeshared.conf plus conf.d drop-ins."""

from tapeshared.config.load import DEFAULT_PATH, config_files, load

__all__ = ["DEFAULT_PATH", "config_files", "load"]
