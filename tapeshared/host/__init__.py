"""Adapters to the host: commands, files, locks, retries, udev, netlink."""
