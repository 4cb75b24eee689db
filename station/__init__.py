"""ektp-station: the KTP-el card print station daemon."""

__version__ = "0.1.0"
