"""sha256 of files, and the checksum files that may sit next to the packages (`SHA256SUMS` in GNU
or BSD format, `<file>.sha256`): when they list a package, its sha256 decides its integrity."""
import hashlib
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .model import Problem

BUF_SIZE = 4 << 20
CHECKSUM_FILES = ("SHA256SUMS", "SHA256SUMS.txt", "sha256sums.txt")
REDOWNLOAD = "download it again and compare its sha256 with the one on the download page"


def hash_file(path: Path) -> str:
    """sha256 of a file, read with a large buffer."""
    with open(path, "rb") as f:
        if hasattr(hashlib, "file_digest"):
            return hashlib.file_digest(f, "sha256").hexdigest()
        digest, buf = hashlib.sha256(), memoryview(bytearray(BUF_SIZE))
        while True:
            n = f.readinto(buf)
            if not n:
                return digest.hexdigest()
            digest.update(buf[:n])


def load_checksums(folder: Path, prefix: str = "") -> Dict[str, Tuple[str, str]]:
    """file name -> (sha256, checksum file) from SHA256SUMS and `<file>.sha256` in `folder`."""
    found: Dict[str, Tuple[str, str]] = {}
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found
    for name in names:
        if name in CHECKSUM_FILES:
            for line in _read_text(folder / name).splitlines():
                gnu = re.match(r"^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$", line)
                bsd = re.match(r"^SHA256 ?\((.+)\) ?= ?([0-9a-fA-F]{64})\s*$", line)
                if gnu:
                    found.setdefault(os.path.basename(gnu.group(2)), (gnu.group(1).lower(), prefix + name))
                elif bsd:
                    found.setdefault(os.path.basename(bsd.group(1)), (bsd.group(2).lower(), prefix + name))
    for name in names:  # <file>.sha256 wins over SHA256SUMS
        if name.endswith(".sha256"):
            match = re.match(r"\s*([0-9a-fA-F]{64})", _read_text(folder / name))
            if match:
                found[name[: -len(".sha256")]] = (match.group(1).lower(), prefix + name)
    return found


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def compare_expected(rel: str, sha256: Optional[str], expected: Optional[Tuple[str, str]]) -> List[Problem]:
    """checksum-mismatch when a checksum file lists another sha256 for this file."""
    if expected is None or sha256 is None or sha256 == expected[0]:
        return []
    return [Problem(level="error", code="checksum-mismatch", file=rel,
                    message=f"{rel}: sha256 {sha256} differs from {expected[0]} in {expected[1]}",
                    fix=f"{REDOWNLOAD}, or fix {expected[1]} if the file is right and the checksum is stale")]
