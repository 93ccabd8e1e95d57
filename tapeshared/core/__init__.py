"""The pure core (stdlib only): value types, errors, identity, desired state, plans."""
