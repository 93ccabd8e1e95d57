"""iptables/ip6tables: our own chain plus one jump from the parent chain."""
