"""Integrity without running package code: each file is read once, computing its sha256 and the
check of its format on the way.

- `.run`: the makeself header fields (`skip` lines, `filesizes`, `SHA` / `MD5` of the payload);
- wheels: every member read to the end (zip CRC, as `ZipFile.testzip`) and its RECORD hash;
- `.tar.gz`: the gzip stream decompressed to the end (CRC32 and length) and the tar headers walked;
- `SHA256SUMS` / `<file>.sha256` next to a package say which file it is, never that it is whole:
  the format's own check runs on every file (a truncated installer listed with its sha256 is
  still truncated).

Memory stays bounded whatever the file says: RECORD, the zip central directory, tar long-name
and pax headers and the makeself header are read only up to a cap (`metadata-too-large` beyond).
"""
import base64
import csv
import hashlib
import io
import lzma
import mmap
import os
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from .checksums import BUF_SIZE, REDOWNLOAD, MetadataTooLarge, hash_file
from .makeself import RunHeader, parse_run_header
from .model import Problem


MAX_RECORD = 16 << 20             # RECORD of the largest wheels (torch): a few MiB
MAX_CENTRAL_DIRECTORY = 64 << 20  # zip central directory: ~100 bytes per member
MAX_TAR_HEADER = 1 << 20          # GNU long name/link, pax extended header


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
        try:
            header, too_large = parse_run_header(bytes(bufs[0][: min(n, 1 << 20)])), None
        except MetadataTooLarge as exc:
            header, too_large = None, str(exc)
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
    if too_large:
        return FileCheck(whole.hexdigest(), [_problem("metadata-too-large", rel, too_large)])
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


def _central_directory_size(mm: mmap.mmap) -> int:
    """The size the zip's end record gives its central directory (0 when there is none: ZipFile
    then says what is wrong)."""
    end = mm.rfind(b"PK\x05\x06", max(0, len(mm) - (1 << 16) - 22))
    if end < 0 or end + 22 > len(mm):
        return 0
    size = struct.unpack_from("<I", mm, end + 12)[0]
    locator = end - 20
    if size == 0xFFFFFFFF and locator >= 0 and mm[locator:locator + 4] == b"PK\x06\x07":
        record = struct.unpack_from("<Q", mm, locator + 8)[0]
        if record + 56 <= len(mm) and mm[record:record + 4] == b"PK\x06\x06":
            size = struct.unpack_from("<Q", mm, record + 40)[0]
    return size


def _read_record(zf: zipfile.ZipFile, name: str) -> dict:
    with zf.open(name) as member:
        data = member.read(MAX_RECORD + 1)
    if len(data) > MAX_RECORD:
        raise MetadataTooLarge(f"{name} is larger than {MAX_RECORD >> 20} MiB")
    return {row[0]: row[1] for row in csv.reader(io.StringIO(data.decode())) if len(row) >= 2}


def _zip_problems(fileobj, rel: str, directory_size: int) -> List[Problem]:
    fix = "download the wheel again (e.g. `pip download --no-deps` it from its index)"
    if directory_size > MAX_CENTRAL_DIRECTORY:
        return [_problem("metadata-too-large", rel, f"its zip directory is {directory_size} bytes, more than "
                         f"{MAX_CENTRAL_DIRECTORY >> 20} MiB", fix)]
    try:
        with zipfile.ZipFile(fileobj) as zf:
            record_name = next((n for n in zf.namelist() if n.endswith(".dist-info/RECORD")
                                and n.count("/") == 1), None)
            if record_name is None:
                return [_problem("wheel-corrupt", rel, "no .dist-info/RECORD: not a valid wheel", fix)]
            record = _read_record(zf, record_name)
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
    except MetadataTooLarge as exc:
        return [_problem("metadata-too-large", rel, str(exc), fix)]
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, csv.Error, EOFError, OSError, UnicodeDecodeError,
            ValueError, KeyError, RuntimeError, NotImplementedError) as exc:
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
                problems = _zip_problems(_Mapped(mm), rel, _central_directory_size(mm))
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

    def skip(self, n: int) -> int:
        """Discard the next `n` decompressed bytes; returns how many there were."""
        done = 0
        while done < n:
            if not self._out and not self._more():
                break
            take = min(n - done, len(self._out))
            del self._out[:take]
            done += take
        return done

    def drain(self) -> None:
        while self._more():
            self._out.clear()


class _TarCorrupt(Exception):
    pass


def _tar_number(field: bytes) -> int:
    """A tar number field: octal (NUL/space padded) or base-256 (first byte 0x80)."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    if field[:1] == b"\xff":
        raise _TarCorrupt("negative number in a header")
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise _TarCorrupt("bad number in a header") from None


def _pax_size(data: bytes) -> Optional[int]:
    """The `size` record of a pax extended header (records are `LEN KEY=VALUE\\n`)."""
    size, pos, end = None, 0, len(data.rstrip(b"\0"))
    while pos < end:
        length, sep, _rest = data[pos:pos + 20].partition(b" ")
        if not sep or not length.isdigit() or int(length) < 5 or data[pos + int(length) - 1:pos + int(length)] != b"\n":
            raise _TarCorrupt("bad pax header")
        key, eq, value = data[pos + len(length) + 1:pos + int(length) - 1].partition(b"=")
        if not eq:
            raise _TarCorrupt("bad pax header")
        if key == b"size":
            if not value.isdigit() or len(value) > 20:
                raise _TarCorrupt("bad pax size")
            size = int(value)
        pos += int(length)
    return size


def _walk_tar(stream: "_GzipStream") -> None:
    """Read every tar header, skipping member data: checksums, sizes and the end of the data.
    Long-name and pax headers are read only up to MAX_TAR_HEADER (MetadataTooLarge beyond)."""
    global_size: Optional[int] = None
    next_size: Optional[int] = None
    while True:
        block = stream.read(512)
        if not block or block.count(0) == 512:
            return
        if len(block) < 512:
            raise _TarCorrupt("the archive ends inside a header (truncated)")
        checksum = _tar_number(block[148:156])
        if checksum not in (256 + sum(block[:148]) + sum(block[156:]),
                            256 + sum(struct.unpack_from("148b8x356b", block))):
            raise _TarCorrupt("a header's checksum is wrong")
        kind, size = block[156:157], _tar_number(block[124:136])
        if kind in (b"L", b"K", b"x", b"g", b"X"):
            if size > MAX_TAR_HEADER:
                raise MetadataTooLarge(f"a tar {'long-name' if kind in b'LK' else 'pax'} header of {size} bytes, "
                                       f"more than {MAX_TAR_HEADER >> 20} MiB")
            data = stream.read(-(-size // 512) * 512)
            if len(data) < size:
                raise _TarCorrupt("the archive ends inside a header (truncated)")
            if kind in (b"x", b"X"):
                next_size = _pax_size(data[:size])
            elif kind == b"g":
                global_size = _pax_size(data[:size])
            continue
        if kind == b"S" and block[482]:
            while True:                                   # old GNU sparse: extension blocks
                extension = stream.read(512)
                if len(extension) < 512:
                    raise _TarCorrupt("the archive ends inside a header (truncated)")
                if not extension[504]:
                    break
        size = next_size if next_size is not None else global_size if global_size is not None else size
        next_size = None
        no_data = kind in (b"1", b"2", b"3", b"4", b"5", b"6") or (kind == b"\0" and block[:100].rstrip(b"\0").endswith(b"/"))
        if not no_data and stream.skip(-(-size // 512) * 512) < size:
            raise _TarCorrupt("unexpected end of data (truncated)")


def check_targz(path: Path, rel: str) -> FileCheck:
    """One pass: sha256 of the file, gzip CRC/length of every member, the tar headers."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        stream = _GzipStream(f, digest)
        problems: List[Problem] = []
        try:
            _walk_tar(stream)
            stream.drain()
        except MetadataTooLarge as exc:
            problems = [_problem("metadata-too-large", rel, str(exc))]
        except (_TarCorrupt, zlib.error, EOFError) as exc:
            problems = [_problem("tarball-corrupt", rel, f"damaged archive: {exc}")]
        if problems:
            while stream._read_raw():                    # finish the sha256 of a damaged file
                pass
    return FileCheck(digest.hexdigest(), problems)


# -- entry point -------------------------------------------------------------------------------

CHECKERS = {"run": check_run, "wheel": check_wheel, "tar.gz": check_targz, "sdist": check_targz}


def verify_file(path: Path, rel: str, fmt: str) -> FileCheck:
    """sha256 + integrity of one package file."""
    try:
        checker = CHECKERS.get(fmt)
        return checker(path, rel) if checker else FileCheck(hash_file(path))
    except OSError as exc:
        return FileCheck(None, [_problem("unreadable", rel, f"cannot be read: {exc.strerror or exc}",
                                         "check that the file exists and is readable")])
