"""sha256 of files, and the checksum files that may sit next to the packages (`SHA256SUMS` in GNU
or BSD format, `<file>.sha256`): when they list a package, its sha256 decides its integrity."""
import errno
import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .model import Problem

BUF_SIZE = 4 << 20
CHECKSUM_FILES = ("SHA256SUMS", "SHA256SUMS.txt", "sha256sums.txt")
MAX_CHECKSUM_FILE = 16 << 20
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


def read_capped(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. OSError when it cannot be read or is
    not a regular file (opened non-blocking: a FIFO does not hang); MetadataTooLarge when larger."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise MetadataTooLarge(f"larger than {limit >> 20} MiB")
    return data


class MetadataTooLarge(ValueError):
    """Metadata (RECORD, a tar header, a checksum file...) over the size ascend-build reads."""


def load_checksums(folder: Path, prefix: str = "") -> Tuple[Dict[str, Tuple[str, str]], List[Problem]]:
    """file name -> (sha256, checksum file) from SHA256SUMS and `<file>.sha256` in `folder`, and
    the problems of checksum files that cannot be read."""
    found: Dict[str, Tuple[str, str]] = {}
    problems: List[Problem] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return found, problems

    def text(name: str) -> str:
        try:
            return read_capped(folder / name, MAX_CHECKSUM_FILE).decode("utf-8", "replace")
        except OSError as exc:
            why = exc.strerror or str(exc)
        except MetadataTooLarge as exc:
            why = str(exc)
        problems.append(Problem(level="error", code="checksum-file-unreadable", file=prefix + name,
                                message=f"{prefix + name} cannot be read: {why}",
                                fix="make it a readable text file of sha256 lines, or remove it"))
        return ""

    for name in names:
        if name in CHECKSUM_FILES:
            for line in text(name).splitlines():
                gnu = re.match(r"^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$", line)
                bsd = re.match(r"^SHA256 ?\((.+)\) ?= ?([0-9a-fA-F]{64})\s*$", line)
                if gnu:
                    found.setdefault(os.path.basename(gnu.group(2)), (gnu.group(1).lower(), prefix + name))
                elif bsd:
                    found.setdefault(os.path.basename(bsd.group(1)), (bsd.group(2).lower(), prefix + name))
    for name in names:  # <file>.sha256 wins over SHA256SUMS
        if name.endswith(".sha256"):
            match = re.match(r"\s*([0-9a-fA-F]{64})", text(name))
            if match:
                found[name[: -len(".sha256")]] = (match.group(1).lower(), prefix + name)
    return found, problems


def compare_expected(rel: str, sha256: Optional[str], expected: Optional[Tuple[str, str]]) -> List[Problem]:
    """checksum-mismatch when a checksum file lists another sha256 for this file."""
    if expected is None or sha256 is None or sha256 == expected[0]:
        return []
    return [Problem(level="error", code="checksum-mismatch", file=rel,
                    message=f"{rel}: sha256 {sha256} differs from {expected[0]} in {expected[1]}",
                    fix=f"{REDOWNLOAD}, or fix {expected[1]} if the file is right and the checksum is stale")]
