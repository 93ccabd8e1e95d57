"""IET (ietd with the rawio pass-through patch): ietd.conf, access files, ietadm."""
