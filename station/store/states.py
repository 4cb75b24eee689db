"""The names the store writes into its state columns, and SQL helpers over them."""

from __future__ import annotations

# Attempt states, in order (DESIGN.md); terminal ones after.
BEFORE_PRINTING = ("started", "fed", "encoded", "verified")


PRINTING_OR_LATER = ("printing", "printed", "ejected")


TERMINAL = ("done", "rejected", "aborted", "needs_inspection")


#: States whose blank is neither used nor spoiled yet.
HOLDING_A_BLANK = (*BEFORE_PRINTING, *PRINTING_OR_LATER, "needs_inspection")


#: Records whose sealed personal data is still needed (to print, or after inspection).
OPEN_STATUSES = ("queued", "printing", "inspection")


SPOIL_CLASSES = ("failed encode", "failed print", "physically damaged", "chip dead/invalid")


#: Who a spoiled blank is charged to (``station report``): the record's data, the blank
#: itself (its chip), or the printer/encoder; NULL in the ledger: not known (power cut,
#: inspection).
CAUSES = ("record", "blank", "device")


def marks(values: tuple[object, ...]) -> str:
    """SQL placeholders for ``IN (...)`` over ``values``."""
    return ",".join("?" * len(values))
