"""Target backends (iet, lio, tgt): each a backend.py adapter over pure planners."""
