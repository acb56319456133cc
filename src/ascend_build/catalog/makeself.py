"""The header fields of makeself self-extracting archives (`.run`), read without running them:
`skip` (header lines; or the literal of `head -n N "$0"` in older headers), `filesizes`, and the
payload digests `SHA` (sha256) or `MD5`, one per archive; all-zero digests mean "not computed"."""
import re
from dataclasses import dataclass
from typing import List, Optional

from .checksums import MetadataTooLarge

_ZERO = re.compile(r"^0+$")
MAX_SKIP = 100_000                    # header lines
MAX_SIZE_DIGITS = 19                  # filesizes fit in 64 bits


@dataclass
class RunHeader:
    offset: int                       # payload start: bytes of the first `skip` lines
    sizes: List[int]                  # filesizes
    sums: List[str]                   # expected digests, one per size (empty: none known)
    algorithm: Optional[str]          # "sha256" | "md5" | None


def _field(text: str, name: str) -> Optional[str]:
    match = re.search(rf'^\s*{name}="?([^"\n]*)"?\s*$', text, re.M)
    return match.group(1).strip() if match else None


def parse_run_header(head: bytes) -> Optional[RunHeader]:
    """The makeself fields of the first bytes of a .run; None when `skip` is not found there;
    MetadataTooLarge when a number in them is out of range."""
    text = head.decode("latin-1")
    skip = _field(text, "skip")
    if skip is None or not re.fullmatch(r"[0-9]+", skip):
        match = re.search(r'head -n "?([0-9]+)"? "?\\?\$0', text)
        skip = match.group(1) if match else None
    if skip is None:
        return None
    if len(skip) > 6 or int(skip) > MAX_SKIP:
        raise MetadataTooLarge(f"the header's skip ({skip[:20]}{'...' if len(skip) > 20 else ''}) is more than {MAX_SKIP} lines")
    offset = 0
    for _ in range(int(skip)):
        offset = head.find(b"\n", offset) + 1
        if offset == 0:
            return None
    header = text[:offset]
    sizes_text = _field(header, "filesizes") or ""
    if re.fullmatch(r"[0-9 ]+", sizes_text) and any(len(s) > MAX_SIZE_DIGITS for s in sizes_text.split()):
        raise MetadataTooLarge(f"the header's filesizes has a number of more than {MAX_SIZE_DIGITS} digits")
    sizes = [int(s) for s in sizes_text.split()] if re.fullmatch(r"[0-9 ]+", sizes_text) else []
    for algorithm, name in (("sha256", "SHA"), ("md5", "MD5")):
        sums = (_field(header, name) or "").split()
        if sums and len(sums) == len(sizes) and not all(_ZERO.match(s) for s in sums):
            return RunHeader(offset, sizes, [s.lower() for s in sums], algorithm)
    return RunHeader(offset, sizes, [], None)
