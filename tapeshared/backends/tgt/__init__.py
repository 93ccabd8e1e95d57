"""tgt (userspace target): tgtadm against a running tgtd."""
