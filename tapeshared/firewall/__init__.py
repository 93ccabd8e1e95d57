"""The firewall: one rule spec, pure rule builders and the iptables and nft adapters."""
