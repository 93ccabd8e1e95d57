"""nftables: our own inet table."""
