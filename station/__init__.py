"""ektp-station: the KTP-el card print station. The running process is the flat modules
here; store/, faces/, link/, papers/ and cli/ hold what spans files."""

__version__ = "0.1.0"
