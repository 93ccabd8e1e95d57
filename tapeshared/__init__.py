"""tapeshared: keep a host's SCSI tape drives and changers exported over iSCSI."""

__version__ = "0.1.0"
