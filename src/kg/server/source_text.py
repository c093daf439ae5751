"""Source texts for pages: read from the sources directory by a document's kg:fileName,
checked against its kg:sha256, and cut into a quote's context.

The store holds offsets, not texts; pages show a quote inside the passage around it, so the
text must be the very file the offsets were computed on. A name that is not a plain file name
in the directory, or a file whose checksum differs from the graph's, yields no text (the page
then shows the quote alone) rather than a wrong context.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

WINDOW = 360  # characters of context either side of a quote inside a long passage


@lru_cache(maxsize=16)
def _read(path: Path, mtime_ns: int, size: int) -> tuple[str, str] | None:
    """(text, sha256) of a file, cached per version of the file."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8"), hashlib.sha256(raw).hexdigest()
    except UnicodeDecodeError:
        return None


def load_text(sources_dir: Path, file_name: str | None, sha256: str | None) -> str | None:
    """The document text, or None when it is missing, unsafe to open or not the built file."""
    if not file_name or "/" in file_name or "\\" in file_name or file_name.startswith("."):
        return None
    path = sources_dir / file_name
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    read = _read(path, stat.st_mtime_ns, stat.st_size)
    if read is None:
        return None
    text, digest = read
    if sha256 and sha256.lower() != digest:
        return None
    return text


def same_text(a: str, b: str) -> bool:
    """Whether two strings agree up to runs of white space (how quotes are matched)."""
    return a.split() == b.split()


@dataclass
class Context:
    """A quote inside its passage: text before, the quote, text after (each plain text)."""

    before: str
    quote: str
    after: str
    clipped_before: bool = False
    clipped_after: bool = False


def quote_context(text: str, start: int, end: int, passage: tuple[int, int] | None,
                  quote: str | None = None) -> Context | None:
    """The quote at [start, end) inside its passage (a window of it when long), or None when
    the offsets do not fit the text or the text there is not the quote."""
    if not 0 <= start < end <= len(text):
        return None
    if quote is not None and not same_text(text[start:end], quote):
        return None
    lo, hi = passage if passage and passage[0] <= start and end <= passage[1] else (start, end)
    left, right = max(lo, start - WINDOW), min(hi, end + WINDOW)
    if left > lo:  # start the window on a word boundary
        space = text.find(" ", left, start)
        left = space + 1 if space != -1 else left
    if right < hi:
        space = text.rfind(" ", end, right)
        right = space if space != -1 else right
    return Context(text[left:start], text[start:end], text[end:right],
                   clipped_before=left > lo, clipped_after=right < hi)
