"""Downloads that survive interruptions and never leave a wrong file under a wheel's name, with
urllib3. Each wheel is written to a `.part` file of this run (fetch/parts.py), continued with an
HTTP Range request after an interruption, and its sha256 checked before it gets its name (a hard
link: an existing file is never replaced). A file already in the folder (or its packages/) with
the right sha256 is kept.

What the index says bounds what is written: a Content-Length that disagrees with the size the
index lists is refused before the body is read, and no more than that size is ever written. A
body that ends short, a server too slow (fetch/pace.py) or one that stops answering is an
interruption: the part is kept for the next run. Only a whole body with another sha256 (or more
bytes than the index lists) is refused as other bytes, and its part removed."""
import contextlib
import hashlib
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable, Dict, Optional
from urllib.parse import urlsplit

import urllib3

from .. import __version__
from ..catalog.scan import PACKAGES_DIR, follow
from ..errors import PackageError
from ..statefiles import guarded, state_error
from .pace import DEADLINE_ENV, WINDOW_ENV, Limits, Meter
from .parts import Part, claim, sweep
from .resolve import Wheel

CHUNK = 1 << 20
Progress = Callable[[int, Optional[int]], None]      # (bytes so far, total or None)
RETRY = "run fetch again: it continues where it stopped"
OTHER_BYTES = "run fetch again; if it repeats, the index or a proxy serves other bytes: use another index (--index-url)"


class OtherBytes(PackageError):
    """The server sent something that is not the file the index lists: its part is removed."""


class Client:
    """urllib3 pools, one per proxy (the usual *_proxy/no_proxy variables), shared by downloads."""

    def __init__(self) -> None:
        self.pools: Dict[Optional[str], urllib3.PoolManager] = {}

    def pool(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
            proxy = None
        if proxy not in self.pools:
            self.pools[proxy] = urllib3.ProxyManager(proxy) if proxy else urllib3.PoolManager()
        return self.pools[proxy]


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


def _head_in_time(ask: Callable[[], urllib3.BaseHTTPResponse], url: str, limits: Limits) -> urllib3.BaseHTTPResponse:
    """`ask()`'s response, once its status line and headers came. A read timeout bounds each read
    only: a server that trickles its head a byte at a time is stopped here, after the time to
    connect and one speed window (at most the deadline). Its connection is left to a thread that
    ends with the process (fetch stops at this error)."""
    bound = min(limits.deadline, limits.connect + limits.read_timeout)
    answer: Dict[str, object] = {}

    def run() -> None:
        try:
            answer["response"] = ask()
        except BaseException as exc:   # noqa: BLE001 - handed to the caller's thread
            answer["error"] = exc

    worker = threading.Thread(target=run, name="fetch-request", daemon=True)
    worker.start()
    worker.join(bound)
    if worker.is_alive():
        raise PackageError(f"{url} did not send a whole answer head (status line and headers) in {bound:g} s",
                           fix=f"the server or a proxy on the way is too slow or stuck; {RETRY} "
                               f"({DEADLINE_ENV}, {WINDOW_ENV} set how long it may take)")
    if "error" in answer:
        raise answer["error"]
    return answer["response"]


def _request(client: Client, url: str, start: int, limits: Limits) -> Optional[urllib3.BaseHTTPResponse]:
    headers = {"User-Agent": f"ascend-build/{__version__}", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = _head_in_time(lambda: client.pool(url).request(
            "GET", url, headers=headers, preload_content=False, decode_content=False,
            timeout=urllib3.Timeout(connect=min(limits.connect, limits.deadline), read=limits.read_timeout),
            retries=urllib3.Retry(total=8, connect=2, read=0, status=0, other=0, redirect=5)), url, limits)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PackageError(f"cannot reach {url}: {reason}", fix=f"check the network and proxy; {RETRY}") from None
    if response.status in (200, 206):
        return response
    response.release_conn()
    if response.status == 416 and start:
        return None                                     # nothing after `start`: the part is whole
    raise PackageError(f"cannot download {url}: HTTP {response.status} {response.reason or ''}".rstrip(), fix=RETRY)


def _resumed_at(response, url: str, start: int, size: Optional[int]) -> int:
    """Where the response's body starts: `start` for a 206 of that range, 0 when the server sent
    the whole file."""
    if response.status != 206:
        return 0
    first, _, total = response.headers.get("Content-Range", "").partition("/")
    if not start or first.partition("-")[0] != f"bytes {start}":
        raise PackageError(f"{url} answered another range than bytes {start}-", fix=RETRY)
    if size is not None and total.strip() not in ("*", str(size)):
        raise OtherBytes(f"{url} says the file has {total.strip()[:20]!r} bytes (Content-Range), the index lists "
                         f"{size}: refused", fix=OTHER_BYTES)
    return start


def _announced(response, url: str, wheel: Wheel, start: int) -> Optional[int]:
    """The body's Content-Length, refused (before the body is read) when it is not a number or
    disagrees with the size the index lists."""
    text = response.headers.get("Content-Length")          # several headers come joined: refused
    if text is None:
        return None
    if not text.strip().isdigit():
        raise PackageError(f"{url} announces a Content-Length of {text[:40]!r}: refused", fix=OTHER_BYTES)
    length = int(text)
    if wheel.size is not None and length != wheel.size - start:
        raise PackageError(f"{url} announces {length} bytes (Content-Length) where the index lists {wheel.size} for "
                           f"{wheel.filename}" + (f" ({wheel.size - start} after the {start} kept)" if start else "")
                           + ": refused before downloading", fix=OTHER_BYTES)
    return length


def _receive(response, part: Part, wheel: Wheel, have: int, digest, progress: Progress, limits: Limits,
             clock: Callable[[], float]):
    """Write the body after the `have` bytes of the part; (bytes in the part, digest)."""
    out: BinaryIO = part.file
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    if coding not in ("", "identity"):                  # asked for none: what comes is not the file's bytes
        raise PackageError(f"{wheel.url} sends the file encoded (Content-Encoding: {coding[:40]}) though fetch asked "
                           "for its bytes as they are: refused", fix=OTHER_BYTES)
    start = _resumed_at(response, wheel.url, have, wheel.size)
    length = _announced(response, wheel.url, wheel, start)
    if start != have:
        out.truncate(0)
        digest, have = hashlib.sha256(), 0
    out.seek(have)
    total = wheel.size if wheel.size is not None else (have + length if length is not None else None)
    bound, said = (total, "the index lists" if wheel.size is not None else "it announced")
    if total is None or wheel.size is None and total > limits.unknown_size:
        bound, said = limits.unknown_size, "fetch takes when the index lists no size"
    room = bound - have
    progress(have, total)
    meter, received = Meter(limits, clock()), 0

    def stopped(reason: str) -> PackageError:
        with contextlib.suppress(OSError):             # a full disk: the part keeps what it holds
            out.flush()
        of = f" of {total}" if total is not None else ""
        return PackageError(f"the download of {wheel.filename} stopped after {have}{of} bytes: {reason}",
                            fix=f"run fetch again: it continues from the bytes kept in {part.path.name} (HTTP Range)")
    while True:
        try:
            block = response.read1(CHUNK)
        except urllib3.exceptions.ReadTimeoutError:
            raise stopped(f"no byte came for {limits.read_timeout:g} s") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise stopped(f"the connection broke ({type(exc).__name__})") from None
        if not block:
            break
        if len(block) > room:
            raise OtherBytes(f"{wheel.url} sends more than the {bound} bytes {said} for {wheel.filename}: "
                             "refused", fix=OTHER_BYTES)
        try:
            out.write(block)
        except OSError as err:                          # a full disk: what was written is kept
            raise state_error(part.path, err) from None
        digest.update(block)
        have, received, room = have + len(block), received + len(block), room - len(block)
        progress(have, total)
        reason = meter.check(received, clock())
        if reason:
            raise stopped(reason)
    if total is not None and have < total:
        raise stopped("the server closed the connection")
    return have, digest


def _digest_of(out: BinaryIO, size: int) -> "hashlib._Hash":
    """The sha256 of the first `size` bytes of `out`."""
    digest, done = hashlib.sha256(), 0
    out.seek(0)
    while done < size:
        block = out.read(min(CHUNK, size - done))
        if not block:
            break
        digest.update(block)
        done += len(block)
    return digest


def _fill(part: Part, wheel: Wheel, progress: Progress, limits: Limits, client: Client,
          clock: Callable[[], float]) -> "hashlib._Hash":
    """Complete the part (resuming what it holds); the digest of its bytes."""
    out = part.file
    have = out.seek(0, os.SEEK_END)
    if wheel.size is not None and have > wheel.size:
        have = 0
    out.truncate(have)
    digest = _digest_of(out, have)
    if wheel.size is None or have < wheel.size:
        response = _request(client, wheel.url, have, limits)
        if response is not None:
            try:
                have, digest = _receive(response, part, wheel, have, digest, progress, limits, clock)
            finally:
                response.release_conn()
    with guarded(part.path):
        out.flush()
    progress(have, have)
    return digest


def download(wheel: Wheel, workdir: Path, progress: Progress = lambda done, total: None,
             limits: Limits = Limits(), client: Optional[Client] = None,
             clock: Callable[[], float] = time.monotonic) -> Path:
    """Fetch `wheel` into `workdir` (resuming a part file no other run holds); its path once its
    sha256 is right. PackageError when it stopped (the part is kept) or other bytes came."""
    final = workdir / wheel.filename
    part = claim(workdir, wheel.filename)
    try:
        digest = _fill(part, wheel, progress, limits, client or Client(), clock)
        if digest.hexdigest() != wheel.sha256:
            raise OtherBytes(f"{wheel.filename} from {wheel.url} has sha256 {digest.hexdigest()}, not the "
                             f"{wheel.sha256} the index lists: refused", fix=OTHER_BYTES)
    except OtherBytes:
        part.drop()
        raise
    except BaseException:
        part.close()
        raise
    try:
        os.link(part.path, final)
    except FileExistsError:
        part.drop()
        return present(workdir, wheel) or final
    except OSError as exc:
        part.close()
        raise PackageError(f"cannot name {final}: {exc.strerror or exc}", fix="check the folder's permissions") from None
    part.drop()
    sweep(workdir, wheel.filename)
    return final
