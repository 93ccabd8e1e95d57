"""The daemon: one loop, sd_notify and SysV support, logging, the state file."""
