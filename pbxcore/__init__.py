"""pbxcore: a SIP switching core that runs a script per call event (the CGI model)."""

__version__ = "0.1.0"
