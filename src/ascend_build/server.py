"""The package server: serves only an allow-list of files, under a random token path, with
sendfile and ranges. One thread runs a non-blocking event loop over every connection: a client
that connects and stays silent (or trickles) costs a file descriptor, not a thread, and every
connection lives under a deadline. Replaces `python3 -m http.server 3000`."""
import email.utils
import errno
import hmac
import os
import re
import secrets
import selectors
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

from .catalog.scan import PACKAGES_DIR, Catalog, follow
from .errors import PortInUse, ServerError

MAX_TARGET = 1024                 # longest request target accepted (414 beyond)
MAX_HEAD = 16 << 10               # longest request head, line and headers (414 or 431 beyond)
MAX_RANGE_DIGITS = 18             # a Range number with more digits is past any file (416)
STOP_TIMEOUT = 0.5                # seconds stop() waits for the server thread to end
SWEEP_SECONDS = 0.25              # how often deadlines are checked
SEND_CHUNK = 16 << 20             # most bytes one sendfile() call moves (fairness between clients)
ACCEPT_BATCH = 64                 # most connections accepted per wake-up
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 1.0       # accept() pauses while out of file descriptors
DRAIN_SECONDS, DRAIN_BYTES = 2.0, 1 << 20    # what a client still sends is read before closing
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,}")
HEAD_END = re.compile(rb"\r?\n\r?\n")
TOKEN_CHARS = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
TARGET_CHARS = re.compile(rb"[\x21-\x7e]+")
HTTP_VERSION = re.compile(rb"HTTP/(\d)\.(\d)")
DIGITS = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Limits:
    """What one client may hold. Past `connections` open connections, a new one closes the
    connection that has waited longest for its request, or gets a 503 when all are busy."""

    connections: int = 256        # 2 descriptors each (socket, file): fits the common 1024 limit
    head_seconds: float = 20.0    # a request head must arrive whole within this, counted from
                                  # the connection's start or the end of its previous response
    send_seconds: float = 60.0    # a response must move `send_progress` bytes in each such window
    send_progress: int = 1 << 20


@dataclass(frozen=True)
class Transfer:
    """One GET of a served file, finished (complete=True) or cut short."""

    file: str
    bytes: int
    seconds: float
    complete: bool
    status: int


class RangeNotSatisfiable(Exception):
    """The requested range starts past the end of the file (416)."""


def _range_number(text: str) -> int:
    if len(text) > MAX_RANGE_DIGITS:
        raise RangeNotSatisfiable()
    return int(text)


def byte_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """(first, last) byte of a single `bytes=a-b`, `a-` or `-n` range. None means "send the
    whole file" (no header, several ranges, or one the RFC says to ignore). Numbers of more than
    MAX_RANGE_DIGITS digits are not satisfiable."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or "," in spec:
        return None
    if not all(part == "" or (part.isascii() and part.isdigit()) for part in (first, last)):
        return None
    if first == "":                                   # suffix: the last n bytes
        if last == "":
            return None
        count = _range_number(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(0, size - count), size - 1
    start, end = _range_number(first), _range_number(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable()
    return start, min(end, size - 1)


def body_length(fields: Sequence[Tuple[str, str]]) -> int:
    """The length of a request's body from its header fields (lower-case names), by RFC 9112
    section 6.3. ValueError for framing the server answers with 400 and a close: any
    Transfer-Encoding (the server reads no request body, so it supports no transfer coding; with
    a Content-Length too it is a smuggling attempt), or a Content-Length that is not one decimal
    number (differing values in repeated fields or in a list, an empty or non-digit value)."""
    if any(name == "transfer-encoding" for name, _ in fields):
        raise ValueError("Transfer-Encoding in a request")
    values = {item.strip(" \t") for name, value in fields if name == "content-length" for item in value.split(",")}
    if not values:
        return 0
    if len(values) != 1 or not DIGITS.fullmatch(next(iter(values))):
        raise ValueError(f"Content-Length {sorted(values)!r}")
    return int(values.pop())


def requested_name(target: str, token: str) -> Optional[str]:
    """The file name in a request target of exactly `/TOKEN/NAME` (NAME percent-decoded once,
    a query string ignored), or of the absolute form `http://HOST[:PORT]/TOKEN/NAME` that every
    server must accept (RFC 9112 section 3.2.2), else None. The name still has to be in the
    allow-list."""
    path = target.split("?", 1)[0]
    scheme, sep, rest = path.partition("://")
    if sep and scheme.lower() == "http":
        path = "/" + rest.partition("/")[2] if "/" in rest else ""
    if not path.startswith("/"):
        return None
    head, slash, rest = path[1:].partition("/")
    if not slash or not hmac.compare_digest(head.encode(), token.encode()):
        return None
    try:
        return unquote(rest, errors="strict") or None
    except UnicodeDecodeError:
        return None


def _unchanged(path: Path) -> Optional[Path]:
    """`path` (a real path fixed at start) when no link has been put in its way since, else None."""
    return path if os.path.realpath(path) == str(path) else None


def _open_regular(path: Path) -> Tuple[int, os.stat_result]:
    """A read descriptor of a regular file and its stat. O_NONBLOCK: opening a FIFO put in the
    file's place returns at once (and is then refused); O_NOFOLLOW: `path` is a real path, a
    symlink there now is a swap. Raises OSError (EINVAL for a file that is not regular)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd, info


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or len(name) > 255 or "/" in name or "\\" in name or not name.isprintable():
        raise ServerError(f"cannot serve a file under the name {name!r}",
                          fix="served names are plain file names: no slashes, control characters or '..'")


def _real_file(path: Path) -> Path:
    """The real path of the readable regular file `path` is (links followed once, at start)."""
    real = Path(os.path.realpath(path))
    try:
        fd, _ = _open_regular(real)
    except OSError as err:
        what = {errno.ENOENT: "missing", errno.EINVAL: "not a regular file"}.get(err.errno, f"unreadable ({err.strerror})")
        raise ServerError(f"{path} is {what}", fix="serve readable regular files (or links to them)") from None
    os.close(fd)
    return real


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_error(err: OSError, host: str, port: int) -> ServerError:
    where = _hostport(host, port)
    if err.errno == errno.EADDRINUSE:
        return PortInUse(f"cannot listen on {where}: the port is already in use",
                           fix=f"pass --port 0 to pick a free port, or stop the process that holds port {port}"
                               f" (for example an old `python3 -m http.server {port}`)")
    if err.errno == errno.EADDRNOTAVAIL:
        return ServerError(f"cannot listen on {where}: {host} is not an address of this machine",
                           fix="pass --host with an address of this machine: 127.0.0.1, or the docker bridge gateway")
    if err.errno == errno.EACCES:
        return ServerError(f"cannot listen on {where}: permission denied",
                           fix="ports below 1024 need root: use --port 3000, or --port 0 for a free one")
    return ServerError(f"cannot listen on {where}: {err.strerror or err}", fix="check --host and --port")


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as err:
        raise ServerError(f"cannot listen on {host!r}: {getattr(err, 'strerror', None) or err}",
                          fix="--host takes an address of this machine, e.g. 127.0.0.1") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as err:
        sock.close()
        raise _bind_error(err, host, port) from None
    return sock


class PackageServer:
    """HTTP server for an allow-list of files: GET/HEAD of `/TOKEN/NAME` only (or its absolute
    form), 404 otherwise; an HTTP/1.1 request without one Host field is 400.

    `files` maps URL names to paths; each must be (or link to) a readable regular file. Its real
    path is fixed at start: a link put in its way later is refused at the request. Which files
    (the planned packages, links followed as `catalog.scan.follow` decides) is the caller's choice.
    Use as a context manager, or start()/stop().
    """

    def __init__(self, files: Mapping[str, Path], host: str = "127.0.0.1", port: int = 3000,
                 token: Optional[str] = None, on_transfer: Optional[Callable[[Transfer], None]] = None,
                 limits: Limits = Limits()):
        self.host = host
        self.token = token if token is not None else secrets.token_urlsafe(16)
        self.on_transfer = on_transfer
        self.limits = limits
        if not TOKEN_PATTERN.fullmatch(self.token):
            raise ServerError("the server token must be at least 16 URL-safe characters (A-Z a-z 0-9 _ -)")
        if not 0 <= port <= 65535:
            raise ServerError(f"port {port} is out of range", fix="use a port from 1 to 65535, or 0 for a free one")
        self._port = port
        self.files: Dict[str, Path] = {}
        for name, path in files.items():
            _check_name(name)
            self.files[name] = _real_file(Path(path))
        self._lock = threading.Lock()
        self._loop: Optional[_Loop] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one when 0 was asked), else the requested one."""
        loop = self._loop
        return loop.port if loop else self._port

    @property
    def url(self) -> str:
        return f"http://{_hostport(self.host, self.port)}/{self.token}/"

    def url_for(self, name: str) -> str:
        if name not in self.files:
            raise KeyError(name)
        return self.url + quote(name, safe="")

    def start(self) -> "PackageServer":
        with self._lock:
            if self._loop is not None:
                return self
            self._loop = _Loop(_listen(self.host, self._port), self)
            self._thread = threading.Thread(target=self._loop.run, name=f"package-server-{self.port}", daemon=True)
            self._thread.start()
            return self

    def stop(self) -> None:
        """Stop listening and cut open connections; returns within about half a second."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.stop()
        thread.join(STOP_TIMEOUT)

    def wait(self) -> None:
        """Block until stop() is called (a signal handler in the main thread still runs)."""
        thread = self._thread
        while thread is not None and thread.is_alive():
            thread.join(0.5)

    def __enter__(self) -> "PackageServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def resolve(self, target: str) -> Optional[Tuple[str, Path]]:
        """(name, real path) for a request target that may be served, else None."""
        name = requested_name(target, self.token)
        path = self.files.get(name) if name is not None else None
        real = _unchanged(path) if path is not None else None
        return (name, real) if name is not None and real is not None else None

    def report(self, transfer: Transfer) -> None:
        if self.on_transfer is not None:
            self.on_transfer(transfer)


READING, SENDING, DRAINING = "reading", "sending", "draining"


class _Connection:
    """One client socket: reading a request head, sending a response, or draining before close."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock = sock
        self.state = READING
        self.deadline = deadline
        self.inbuf = bytearray()
        self.out = b""                 # response head (or error body) still to send
        self.file: Optional[int] = None
        self.offset = self.left = 0    # body span still to send
        self.moved = 0                 # bytes sent since the deadline last moved
        self.keep_alive = True
        self.transfer: Optional[Tuple[str, int, float]] = None   # name, status, start time of a GET
        self.sent = 0
        self.drained = 0


class _Loop:
    """The event loop of one started PackageServer."""

    def __init__(self, listener: socket.socket, owner: PackageServer):
        self.listener = listener
        self.port = listener.getsockname()[1]
        self.owner = owner
        self.limits = owner.limits
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.conns: Dict[socket.socket, _Connection] = {}
        self.waiting: Dict[_Connection, None] = {}      # reading or draining, longest waiting first
        self.pipelined: List[_Connection] = []          # reading, with a next request already here
        self.stopping = False
        self.backoff = BACKOFF_FIRST
        self.resume_at: Optional[float] = None
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.selector.register(listener, selectors.EVENT_READ)

    def stop(self) -> None:
        self.stopping = True
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def run(self) -> None:
        next_sweep = time.monotonic() + SWEEP_SECONDS
        try:
            while not self.stopping:
                now = time.monotonic()
                wake = min(next_sweep, self.resume_at or next_sweep)
                for key, _ in self.selector.select(max(0.0, wake - now)):
                    if self.stopping:
                        break
                    self._dispatch(key.fileobj)
                while self.pipelined and not self.stopping:
                    conn = self.pipelined.pop()
                    if conn.state == READING and conn.sock in self.conns:
                        self._guarded(conn, self._next_request)
                now = time.monotonic()
                if self.resume_at is not None and now >= self.resume_at:
                    self.resume_at = None
                    self.selector.register(self.listener, selectors.EVENT_READ)
                if now >= next_sweep:
                    next_sweep = now + SWEEP_SECONDS
                    self._sweep(now)
        finally:
            for conn in list(self.conns.values()):
                self._close(conn)
            self.selector.close()
            for sock in (self.listener, self.wake_r, self.wake_w):
                sock.close()

    def _dispatch(self, sock) -> None:
        if sock is self.listener:
            return self._accept()
        if sock is self.wake_r:
            return
        conn = self.conns.get(sock)
        if conn is not None:
            self._guarded(conn, self._send if conn.state == SENDING else self._receive)

    def _guarded(self, conn: _Connection, step: Callable[[_Connection], None]) -> None:
        try:
            step(conn)
        except OSError:
            self._close(conn)
        except Exception as err:  # noqa: BLE001 - one connection's bug must not stop the server
            sys.stderr.write(f"package server: {type(err).__name__}: {err}\n")
            self._close(conn)

    # -- connections ---------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno == errno.ECONNABORTED:  # that client left before accept()
                    continue
                # Out of descriptors (EMFILE, ENFILE) or memory: the listener stays ready, so
                # pause instead of spinning on it.
                self.selector.unregister(self.listener)
                self.resume_at = time.monotonic() + self.backoff
                self.backoff = min(self.backoff * 2, BACKOFF_MAX)
                return
            self.backoff = BACKOFF_FIRST
            if len(self.conns) >= self.limits.connections:
                if not self.waiting:
                    self._refuse(sock)
                    continue
                self._close(next(iter(self.waiting)))
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, time.monotonic() + self.limits.head_seconds)
            self.conns[sock] = conn
            self.waiting[conn] = None
            self.selector.register(sock, selectors.EVENT_READ)

    @staticmethod
    def _refuse(sock: socket.socket) -> None:
        """Every connection is busy sending: a 503 (if it fits the socket buffer) and close."""
        try:
            sock.setblocking(False)
            sock.send(_error_bytes(HTTPStatus.SERVICE_UNAVAILABLE, [("Retry-After", "1")], close=True, body=True))
        except OSError:
            pass
        sock.close()

    def _close(self, conn: _Connection) -> None:
        if self.conns.pop(conn.sock, None) is None:
            return
        self.waiting.pop(conn, None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
        if conn.state == SENDING and conn.transfer is not None:
            self._report(conn, complete=False)
        self._release_file(conn)

    @staticmethod
    def _release_file(conn: _Connection) -> None:
        if conn.file is not None:
            os.close(conn.file)
            conn.file = None

    def _sweep(self, now: float) -> None:
        for conn in [c for c in self.conns.values() if now >= c.deadline]:
            if conn.state == READING and conn.inbuf:
                try:
                    conn.sock.send(_error_bytes(HTTPStatus.REQUEST_TIMEOUT, close=True, body=True))
                except OSError:
                    pass
            self._close(conn)

    def _set_state(self, conn: _Connection, state: str, deadline: float) -> None:
        conn.state, conn.deadline = state, deadline
        self.waiting.pop(conn, None)
        if state != SENDING:
            self.waiting[conn] = None
        self.selector.modify(conn.sock, selectors.EVENT_WRITE if state == SENDING else selectors.EVENT_READ)

    # -- reading -------------------------------------------------------------------------------

    def _receive(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            return self._close(conn)
        if conn.state == DRAINING:
            conn.drained += len(data)
            if conn.drained > DRAIN_BYTES:
                self._close(conn)
            return
        conn.inbuf += data
        self._next_request(conn)

    def _next_request(self, conn: _Connection) -> None:
        """Answer the request head in conn.inbuf if it is complete (or already too long)."""
        while conn.inbuf[:1] in (b"\r", b"\n"):      # stray line ends between requests
            del conn.inbuf[:1]
        match = HEAD_END.search(conn.inbuf, 0, MAX_HEAD + 4)
        if match is None:
            if len(conn.inbuf) > MAX_HEAD:
                too_long = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE if b"\n" in conn.inbuf else HTTPStatus.REQUEST_URI_TOO_LONG
                self._respond_error(conn, too_long, close=True, body=True)
            return
        head = bytes(conn.inbuf[:match.start()])
        del conn.inbuf[:match.end()]
        self._answer(conn, head)

    def _answer(self, conn: _Connection, head: bytes) -> None:
        lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not TOKEN_CHARS.fullmatch(parts[0]) or not TARGET_CHARS.fullmatch(parts[1]):
            return self._respond_error(conn, HTTPStatus.BAD_REQUEST, close=True, body=True)
        method, target, version = parts
        body = method != b"HEAD"
        version_match = HTTP_VERSION.fullmatch(version)
        if version_match is None:
            return self._respond_error(conn, HTTPStatus.BAD_REQUEST, close=True, body=body)
        if version_match.group(1) != b"1":
            return self._respond_error(conn, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, close=True, body=body)
        fields: List[Tuple[str, str]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not TOKEN_CHARS.fullmatch(name):
                return self._respond_error(conn, HTTPStatus.BAD_REQUEST, close=True, body=body)
            fields.append((name.decode("ascii").lower(), value.strip().decode("latin-1")))
        try:
            length = body_length(fields)
        except ValueError:
            return self._respond_error(conn, HTTPStatus.BAD_REQUEST, close=True, body=body)
        hosts = sum(1 for name, _ in fields if name == "host")
        if hosts > 1 or (hosts == 0 and version_match.group(2) != b"0"):     # RFC 9112 section 3.2
            return self._respond_error(conn, HTTPStatus.BAD_REQUEST, close=True, body=body)
        headers = dict(fields)
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        conn.keep_alive = "close" not in tokens and (version_match.group(2) != b"0" or "keep-alive" in tokens)
        if length:
            conn.keep_alive = False                  # a request body is never read: close after
        if method not in (b"GET", b"HEAD"):
            return self._respond_error(conn, HTTPStatus.METHOD_NOT_ALLOWED, [("Allow", "GET, HEAD")], close=True, body=True)
        if len(target) > MAX_TARGET:
            return self._respond_error(conn, HTTPStatus.REQUEST_URI_TOO_LONG, close=True, body=body)
        self._serve(conn, target.decode("ascii"), headers, body)

    # -- answering -----------------------------------------------------------------------------

    def _serve(self, conn: _Connection, target: str, headers: Dict[str, str], body: bool) -> None:
        started = time.monotonic()
        found = self.owner.resolve(target)
        if found is None:
            return self._respond_error(conn, HTTPStatus.NOT_FOUND, body=body)
        name, real = found
        try:
            fd, info = _open_regular(real)
        except OSError as err:
            busy = err.errno in OUT_OF_FDS
            return self._respond_error(conn, HTTPStatus.SERVICE_UNAVAILABLE if busy else HTTPStatus.NOT_FOUND,
                                       [("Retry-After", "1")] if busy else [], close=busy, body=body)
        size = info.st_size
        try:
            span = None if headers.get("if-range") else byte_range(headers.get("range"), size)
        except RangeNotSatisfiable:
            os.close(fd)
            return self._respond_error(conn, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                                       [("Content-Range", f"bytes */{size}")], body=body)
        first, last = span if span else (0, size - 1)
        status = HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK
        fields = [("Content-Type", "application/octet-stream"), ("Content-Length", str(last - first + 1)),
                  ("Accept-Ranges", "bytes"), ("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True))]
        if span:
            fields.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        if not conn.keep_alive:
            fields.append(("Connection", "close"))
        conn.out = _head_bytes(status, fields)
        if body:
            conn.file, conn.offset, conn.left = fd, first, last - first + 1
            conn.transfer, conn.sent = (name, status.value, started), 0
        else:
            os.close(fd)
        self._start_sending(conn)

    def _respond_error(self, conn: _Connection, status: HTTPStatus, headers: Sequence[Tuple[str, str]] = (),
                       close: bool = False, body: bool = True) -> None:
        conn.keep_alive = conn.keep_alive and not close
        conn.out = _error_bytes(status, headers, close=not conn.keep_alive, body=body)
        self._start_sending(conn)

    def _start_sending(self, conn: _Connection) -> None:
        conn.moved = 0
        self._set_state(conn, SENDING, time.monotonic() + self.limits.send_seconds)
        self._send(conn)

    def _send(self, conn: _Connection) -> None:
        try:
            if conn.out:
                sent = conn.sock.send(conn.out)
                conn.out = conn.out[sent:]
                self._progress(conn, sent)
                if conn.out:
                    return
            if conn.left:
                sent = os.sendfile(conn.sock.fileno(), conn.file, conn.offset, min(conn.left, SEND_CHUNK))
                if sent == 0:                        # the file got shorter than announced
                    return self._close(conn)
                conn.offset += sent
                conn.left -= sent
                conn.sent += sent
                self._progress(conn, sent)
                if conn.left:
                    return
        except BlockingIOError:
            return
        self._finished(conn)

    def _progress(self, conn: _Connection, sent: int) -> None:
        """The send deadline moves only once `send_progress` bytes went out since it last did."""
        conn.moved += sent
        if conn.moved >= self.limits.send_progress:
            conn.moved = 0
            conn.deadline = time.monotonic() + self.limits.send_seconds

    def _finished(self, conn: _Connection) -> None:
        self._release_file(conn)
        if conn.transfer is not None:
            self._report(conn, complete=True)
        now = time.monotonic()
        if not conn.keep_alive:
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                return self._close(conn)
            conn.drained = 0
            return self._set_state(conn, DRAINING, now + DRAIN_SECONDS)
        self._set_state(conn, READING, now + self.limits.head_seconds)
        if conn.inbuf:
            self.pipelined.append(conn)

    def _report(self, conn: _Connection, complete: bool) -> None:
        name, status, started = conn.transfer
        conn.transfer = None
        try:
            self.owner.report(Transfer(name, conn.sent, time.monotonic() - started, complete, status))
        except Exception as err:  # noqa: BLE001 - a failing callback must not stop the server
            sys.stderr.write(f"package server: on_transfer: {type(err).__name__}: {err}\n")


def _head_bytes(status: HTTPStatus, fields: Sequence[Tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status.value} {status.phrase}", "Server: ascend-build",
             f"Date: {email.utils.formatdate(usegmt=True)}"]
    lines += [f"{key}: {value}" for key, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _error_bytes(status: HTTPStatus, headers: Sequence[Tuple[str, str]] = (), close: bool = False,
                 body: bool = True) -> bytes:
    text = f"{status.value} {status.phrase}\n".encode()
    fields = list(headers) + [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(text)))]
    if close:
        fields.append(("Connection", "close"))
    return _head_bytes(status, fields) + (text if body else b"")


def _within(path: Path, workdir: Path) -> bool:
    """`path` names an entry of `workdir` (the entry itself may be a link)."""
    parent = Path(os.path.realpath(path.parent))
    top = Path(os.path.realpath(workdir))
    return parent == top or top in parent.parents


def default_files(catalog: Catalog) -> Dict[str, Path]:
    """The files `serve` offers when none are named: the packages the catalog (`scan`, as `check`
    reads the working directory) identifies, no other file, whatever its suffix."""
    files: Dict[str, Path] = {}
    for package in catalog.packages:
        if package.name in files:
            raise ServerError(f"{package.name} is in the working directory and in {PACKAGES_DIR}/",
                              fix="remove one of them, or name the files to serve: ascend-build serve FILE...")
        files[package.name] = package.path
    return files


def files_to_serve(workdir: Path, names: Optional[List[str]], catalog: Optional[Catalog]) -> Dict[str, Path]:
    """The named files (relative to workdir), or else the packages of `catalog` (the working
    directory's scan, needed only when no file is named); never empty."""
    if not names:
        files = default_files(catalog)
    else:
        files = {}
        for name in names:
            path = Path(workdir) / name
            if path.name in files:
                raise ServerError(f"two files are named {path.name}: {files[path.name]} and {path}",
                                  fix="serve files with different names")
            if not _within(path, workdir):
                raise ServerError(f"{name} is not in the working directory {workdir}",
                                  fix="name files of the working directory (links in it to a package store are fine)")
            files[path.name] = follow(path, name)[0]
    if not files:
        raise ServerError(f"nothing to serve in {workdir}: no file there or in packages/ is a package `check` knows",
                          fix="put the packages there or in packages/ (see `ascend-build check`), "
                              "or name the files: ascend-build serve FILE...")
    return files


def transfer_line(transfer: Transfer) -> str:
    """One line about a transfer, for people."""
    mb = transfer.bytes / 1e6
    rate = mb / transfer.seconds if transfer.seconds > 0 else 0.0
    state = "sent" if transfer.complete else "interrupted"
    return f"{state} {transfer.file}: {mb:.1f} MB in {transfer.seconds:.1f} s ({rate:.0f} MB/s, HTTP {transfer.status})"
