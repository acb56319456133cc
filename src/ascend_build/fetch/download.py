"""Downloads that survive interruptions and never leave a wrong file under a wheel's name: each
wheel is written to `.<file>.part` in the folder, continued with an HTTP Range request after an
interruption, and its sha256 checked before it gets its name (a hard link: an existing file is
never replaced). A file already in the folder (or its packages/) with the right sha256 is kept."""
import hashlib
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from .. import __version__
from ..catalog.scan import PACKAGES_DIR, follow
from ..errors import PackageError
from .resolve import Wheel

CHUNK = 1 << 20
TIMEOUT = 60
Progress = Callable[[int, Optional[int]], None]      # (bytes so far, total or None)
RETRY = "run fetch again: it continues where it stopped"


def sha256_of(path: Path, digest=None) -> "hashlib._Hash":
    digest = digest or hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest


def present(workdir: Path, wheel: Wheel) -> Optional[Path]:
    """The wheel's file when the folder already has it with the right sha256; PackageError when a
    file of that name holds other bytes (it is the user's: never replaced)."""
    for prefix in ("", PACKAGES_DIR + "/"):
        path = workdir / prefix / wheel.filename
        if not os.path.lexists(path):
            continue
        real, _ = follow(path, prefix + wheel.filename)
        if sha256_of(real).hexdigest() != wheel.sha256:
            raise PackageError(f"{prefix}{wheel.filename} is already in the folder but is not the file the index "
                               f"lists (sha256 {wheel.sha256[:16]}...)",
                               fix="move it away (fetch never replaces a file of the folder) and run fetch again")
        return path
    return None


def _open_part(part: Path) -> int:
    try:
        fd = os.open(part, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        raise PackageError(f"cannot write {part}: {exc.strerror or exc}",
                           fix="remove it if it is a link, and check the folder's permissions") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PackageError(f"{part} is not a regular file", fix="remove it and run fetch again")
    return fd


def _request(url: str, start: int):
    headers = {"User-Agent": f"ascend-build/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:
            return None                                 # nothing after `start`: the part is whole
        raise PackageError(f"cannot download {url}: HTTP {exc.code} {exc.reason}", fix=RETRY) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PackageError(f"cannot reach {url}: {reason}", fix=f"check the network and proxy; {RETRY}") from None


def _resumed_at(response, start: int) -> int:
    """Where the response's body starts: `start` for a 206 of that range, 0 when the server sent
    the whole file."""
    if start and response.status == 206:
        if not response.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
            raise PackageError(f"{response.url} answered another range than bytes {start}-", fix=RETRY)
        return start
    return 0


def download(wheel: Wheel, workdir: Path, progress: Progress = lambda done, total: None) -> Path:
    """Fetch `wheel` into `workdir` (resuming its .part file); its path once its sha256 is right."""
    final = workdir / wheel.filename
    part = workdir / f".{wheel.filename}.part"
    fd = _open_part(part)
    with os.fdopen(fd, "r+b") as out:
        have = os.fstat(out.fileno()).st_size
        if wheel.size is not None and have > wheel.size:
            have = 0
        out.truncate(have)
        digest = sha256_of(part) if have else hashlib.sha256()
        response = _request(wheel.url, have) if wheel.size is None or have < wheel.size else None
        if response is not None:
            with response:
                start = _resumed_at(response, have)
                if start != have:
                    out.truncate(0)
                    digest, have = hashlib.sha256(), 0
                out.seek(have)
                length = response.headers.get("Content-Length")
                total = wheel.size or (have + int(length) if length and length.isdigit() else None)
                progress(have, total)
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        out.write(block)
                        digest.update(block)
                        have += len(block)
                        progress(have, total)
                except OSError as exc:
                    raise PackageError(f"the download of {wheel.filename} stopped: {exc}", fix=RETRY) from None
        progress(have, have)
    if digest.hexdigest() != wheel.sha256:
        part.unlink()
        raise PackageError(f"{wheel.filename} from {wheel.url} has sha256 {digest.hexdigest()}, not the "
                           f"{wheel.sha256} the index lists: refused", fix="run fetch again; if it repeats, the "
                           "index or a proxy serves other bytes: use another index (--index-url)")
    try:
        os.link(part, final)
    except FileExistsError:
        part.unlink()
        return present(workdir, wheel) or final
    except OSError as exc:
        raise PackageError(f"cannot name {final}: {exc.strerror or exc}", fix="check the folder's permissions") from None
    part.unlink()
    return final
