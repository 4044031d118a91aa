"""`pbx phone`: a pyVoIP softphone for probes and manual tests (see pbxcore.phone.runner)."""
