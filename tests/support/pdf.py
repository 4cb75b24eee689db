"""Reading the PDF papers back as text (pdftotext), as a person reading them would."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def pdf_text(path: Path, page: int | None = None) -> str:
    """The text of ``path`` (or of one page) as pdftotext lays it out."""
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(
        ["pdftotext", "-layout", *pages, str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def squeeze(text: str) -> str:
    """Runs of spaces made one (pdftotext pads columns)."""
    return re.sub(r"[ \t]+", " ", text)
