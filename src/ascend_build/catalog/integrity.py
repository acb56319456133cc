"""Integrity without running package code: each file is read once, computing its sha256 and the
check of its format on the way.

- `.run`: the makeself header fields (`skip` lines, `filesizes`, `SHA` / `MD5` of the payload);
- wheels: every member read to the end (zip CRC, as `ZipFile.testzip`) and its RECORD hash;
- `.tar.gz`: the gzip stream decompressed to the end (CRC32 and length) and the tar walked;
- `SHA256SUMS` / `<file>.sha256` next to a package win when they list it: then only its sha256
  is compared.
"""
import base64
import csv
import hashlib
import io
import mmap
import os
import tarfile
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from .checksums import BUF_SIZE, REDOWNLOAD, hash_file
from .makeself import RunHeader, parse_run_header
from .model import Problem


@dataclass
class FileCheck:
    """sha256 of the whole file (None when unreadable) and the problems found."""

    sha256: Optional[str]
    problems: List[Problem] = field(default_factory=list)


def _problem(code: str, rel: str, message: str, fix: str = REDOWNLOAD, level: str = "error") -> Problem:
    return Problem(level=level, code=code, message=f"{rel}: {message}", file=rel, fix=fix)


# -- .run (makeself) ---------------------------------------------------------------------------


def check_run(path: Path, rel: str) -> FileCheck:
    """One pass: the whole file's sha256 and the payload's digest(s) from the header. The two
    digests run in two threads (hashlib releases the GIL), over two alternating buffers."""
    whole = hashlib.sha256()
    bufs = [memoryview(bytearray(BUF_SIZE)) for _ in range(2)]
    with open(path, "rb") as f, ThreadPoolExecutor(1) as helper:
        n = f.readinto(bufs[0])
        header = parse_run_header(bytes(bufs[0][: min(n, 1 << 20)]))
        bounds, digests, pos, job = [], [], 0, None
        if header:
            start = header.offset
            for size in header.sizes:
                bounds.append((start, start + size))
                start += size
            digests = [hashlib.new(header.algorithm) for _ in header.sums]
        while n:
            chunk = bufs[0][:n]
            if job:
                job.result()
            job = helper.submit(whole.update, chunk)
            for (lo, hi), digest in zip(bounds, digests):
                a, b = max(lo, pos), min(hi, pos + n)
                if a < b:
                    digest.update(chunk[a - pos: b - pos])
            pos += n
            bufs.reverse()                       # read the next chunk while the helper hashes this one
            n = f.readinto(bufs[0])
        if job:
            job.result()
    return FileCheck(whole.hexdigest(), _run_problems(rel, header, bounds, digests, pos))


def _run_problems(rel: str, header: Optional[RunHeader], bounds, digests, total: int) -> List[Problem]:
    if total == 0:
        return [_problem("run-truncated", rel, "empty file")]
    unverified = ("compare its sha256 with the download page; put the expected value in SHA256SUMS or "
                  f"{os.path.basename(rel)}.sha256 next to it and `check` verifies it")
    if header is None or not header.sizes:
        return [_problem("run-unverified", rel, "no makeself header fields (skip, filesizes, SHA/MD5) found: "
                         "its integrity cannot be checked without running it", unverified, "warning")]
    end = bounds[-1][1]
    if total < end:
        return [_problem("run-truncated", rel, f"truncated: {total} bytes, the header announces {end}")]
    for number, (digest, expected) in enumerate(zip(digests, header.sums), 1):
        if digest.hexdigest() != expected:
            return [_problem("run-corrupt", rel, f"payload {header.algorithm} mismatch (archive {number}): "
                             "the file was altered or damaged")]
    problems = []
    if not digests:
        problems.append(_problem("run-unverified", rel, "the header has no SHA/MD5: only its size was checked",
                                 unverified, "warning"))
    if total > end:
        problems.append(_problem("run-trailing-data", rel, f"{total - end} bytes after the payload the header "
                                 "announces", "compare its sha256 with the download page", "warning"))
    return problems


# -- wheels ------------------------------------------------------------------------------------


class _Mapped(io.RawIOBase):
    """A read-only file object over an mmap (ZipFile needs `seekable`)."""

    def __init__(self, mm: mmap.mmap):
        super().__init__()
        self._mm = mm

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._mm.read() if n is None or n < 0 else self._mm.read(n)

    def seek(self, pos: int, whence: int = 0) -> int:
        self._mm.seek(pos, whence)
        return self._mm.tell()

    def tell(self) -> int:
        return self._mm.tell()


def _record_digest(data_hash: "hashlib._Hash") -> str:
    return "sha256=" + base64.urlsafe_b64encode(data_hash.digest()).rstrip(b"=").decode()


def _zip_problems(fileobj, rel: str) -> List[Problem]:
    fix = "download the wheel again (e.g. `pip download --no-deps` it from its index)"
    try:
        with zipfile.ZipFile(fileobj) as zf:
            record_name = next((n for n in zf.namelist() if n.endswith(".dist-info/RECORD")
                                and n.count("/") == 1), None)
            if record_name is None:
                return [_problem("wheel-corrupt", rel, "no .dist-info/RECORD: not a valid wheel", fix)]
            record = {row[0]: row[1] for row in csv.reader(io.StringIO(zf.read(record_name).decode()))
                      if len(row) >= 2}
            for info in zf.infolist():
                if info.is_dir():
                    continue
                digest = hashlib.sha256()
                with zf.open(info) as member:          # a CRC mismatch raises at the end
                    for block in iter(lambda: member.read(BUF_SIZE), b""):
                        digest.update(block)
                expected = record.get(info.filename)
                if expected and expected.startswith("sha256=") and expected != _record_digest(digest):
                    return [_problem("wheel-corrupt", rel, f"{info.filename} does not match its RECORD hash", fix)]
    except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError, ValueError, KeyError, RuntimeError,
            NotImplementedError) as exc:
        return [_problem("wheel-corrupt", rel, f"damaged zip: {exc}", fix)]
    return []


def check_wheel(path: Path, rel: str) -> FileCheck:
    """Map the wheel once: hash it and, meanwhile, read every member (CRC) and compare RECORD hashes."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return FileCheck(hashlib.sha256().hexdigest(), [_problem("wheel-corrupt", rel, "empty file")])
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            with ThreadPoolExecutor(1) as helper:       # the file's sha256 next to the member checks
                job = helper.submit(lambda: hashlib.sha256(mm).hexdigest())
                problems = _zip_problems(_Mapped(mm), rel)
                return FileCheck(job.result(), problems)


# -- .tar.gz -----------------------------------------------------------------------------------


class _GzipStream(io.RawIOBase):
    """Reads a file once: hashes the raw bytes, hands out the decompressed stream."""

    def __init__(self, raw, digest):
        super().__init__()
        self._raw, self._digest = raw, digest
        self._z = zlib.decompressobj(31)
        self._out = bytearray()

    def readable(self) -> bool:
        return True

    def _more(self) -> bool:
        """Decompress some more into the output buffer; False at the end of the file."""
        if self._z.unconsumed_tail:
            data = self._z.unconsumed_tail
        elif self._z.eof:
            data = self._z.unused_data or self._read_raw()
            if not data:
                return False
            self._z = zlib.decompressobj(31)            # the next gzip member
        else:
            data = self._read_raw()
            if not data:
                raise EOFError("the gzip stream ends early (truncated)")
        self._out += self._z.decompress(data, BUF_SIZE)
        return True

    def _read_raw(self) -> bytes:
        data = self._raw.read(BUF_SIZE)
        self._digest.update(data)
        return data

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._out) < n) and self._more():
            pass
        n = len(self._out) if n < 0 else min(n, len(self._out))
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def drain(self) -> None:
        while self._more():
            self._out.clear()


def check_targz(path: Path, rel: str) -> FileCheck:
    """One pass: sha256 of the file, gzip CRC/length of every member, the tar headers."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        stream = _GzipStream(f, digest)
        try:
            with tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20) as tar:
                for _member in tar:
                    pass
            stream.drain()
            problems = []
        except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
            while stream._read_raw():                    # finish the sha256 of a damaged file
                pass
            problems = [_problem("tarball-corrupt", rel, f"damaged archive: {exc}")]
    return FileCheck(digest.hexdigest(), problems)


# -- entry point -------------------------------------------------------------------------------

CHECKERS = {"run": check_run, "wheel": check_wheel, "tar.gz": check_targz}


def verify_file(path: Path, rel: str, fmt: str, expected: Optional[Tuple[str, str]] = None) -> FileCheck:
    """sha256 + integrity of one package file. `expected` (sha256, checksum file) wins when given."""
    try:
        if expected is not None:
            return FileCheck(hash_file(path))
        checker = CHECKERS.get(fmt)
        return checker(path, rel) if checker else FileCheck(hash_file(path))
    except OSError as exc:
        return FileCheck(None, [_problem("unreadable", rel, f"cannot be read: {exc.strerror or exc}",
                                         "check that the file exists and is readable")])
