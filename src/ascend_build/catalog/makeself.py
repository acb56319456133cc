"""The header fields of makeself self-extracting archives (`.run`), read without running them:
`skip` (header lines; or the literal of `head -n N "$0"` in older headers), `filesizes`, and the
payload digests `SHA` (sha256) or `MD5`, one per archive; all-zero digests mean "not computed"."""
import re
from dataclasses import dataclass
from typing import List, Optional

_ZERO = re.compile(r"^0+$")


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
    """The makeself fields of the first bytes of a .run; None when `skip` is not found there."""
    text = head.decode("latin-1")
    skip = _field(text, "skip")
    if skip is None or not skip.isdigit():
        match = re.search(r'head -n "?(\d+)"? "?\\?\$0', text)
        skip = match.group(1) if match else None
    if skip is None:
        return None
    offset = 0
    for _ in range(int(skip)):
        offset = head.find(b"\n", offset) + 1
        if offset == 0:
            return None
    header = text[:offset]
    sizes_text = _field(header, "filesizes") or ""
    sizes = [int(s) for s in sizes_text.split()] if re.fullmatch(r"[\d ]+", sizes_text) else []
    for algorithm, name in (("sha256", "SHA"), ("md5", "MD5")):
        sums = (_field(header, name) or "").split()
        if sums and len(sums) == len(sizes) and not all(_ZERO.match(s) for s in sums):
            return RunHeader(offset, sizes, [s.lower() for s in sums], algorithm)
    return RunHeader(offset, sizes, [], None)
