"""Import an existing target configuration (IET, targetcli, tgt) into tapeshared's."""
