"""The package server: serves only an allow-list of files, under a random token path, with
sendfile, ranges and a thread per connection. Replaces `python3 -m http.server 3000`."""
import email.utils
import errno
import hmac
import os
import re
import secrets
import socket
import socketserver
import stat
import sys
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote

from .errors import ServerError

MAX_TARGET = 1024                 # longest request target accepted (414 beyond)
IDLE_TIMEOUT = 60.0               # seconds a connection may stay silent before it is closed
STOP_TIMEOUT = 0.5                # seconds stop() waits for connection threads to end
PACKAGE_SUFFIXES = (".run", ".whl", ".tar.gz", ".tgz", ".txt")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,}")


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


def byte_range(header: Optional[str], size: int) -> Optional[Tuple[int, int]]:
    """(first, last) byte of a single `bytes=a-b`, `a-` or `-n` range. None means "send the
    whole file" (no header, several ranges, or one the RFC says to ignore)."""
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
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(0, size - int(last)), size - 1
    start, end = int(first), int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable()
    return start, min(end, size - 1)


def requested_name(target: str, token: str) -> Optional[str]:
    """The file name in a request target of exactly `/TOKEN/NAME` (NAME percent-decoded once,
    a query string ignored), else None. The name still has to be in the allow-list."""
    path = target.split("?", 1)[0]
    if not path.startswith("/"):
        return None
    head, slash, rest = path[1:].partition("/")
    if not slash or not hmac.compare_digest(head.encode(), token.encode()):
        return None
    try:
        return unquote(rest, errors="strict") or None
    except UnicodeDecodeError:
        return None


def _inside(path: Path, root: Path) -> Optional[Path]:
    """The real path of `path` when it lies under `root` (already real), else None."""
    real = Path(os.path.realpath(path))
    return real if real == root or root in real.parents else None


def _check_name(name: str) -> None:
    if not name or name in (".", "..") or len(name) > 255 or "/" in name or "\\" in name or not name.isprintable():
        raise ServerError(f"cannot serve a file under the name {name!r}",
                          fix="served names are plain file names: no slashes, control characters or '..'")


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_error(err: OSError, host: str, port: int) -> ServerError:
    where = _hostport(host, port)
    if err.errno == errno.EADDRINUSE:
        return ServerError(f"cannot listen on {where}: the port is already in use",
                           fix=f"pass --port 0 to pick a free port, or stop the process that holds port {port}"
                               f" (for example an old `python3 -m http.server {port}`)")
    if err.errno == errno.EADDRNOTAVAIL:
        return ServerError(f"cannot listen on {where}: {host} is not an address of this machine",
                           fix="pass --host with an address of this machine: 127.0.0.1, or the docker bridge gateway")
    if err.errno == errno.EACCES:
        return ServerError(f"cannot listen on {where}: permission denied",
                           fix="ports below 1024 need root: use --port 3000, or --port 0 for a free one")
    return ServerError(f"cannot listen on {where}: {err.strerror or err}", fix="check --host and --port")


class PackageServer:
    """HTTP server for an allow-list of files: GET/HEAD of `/TOKEN/NAME` only, 404 otherwise.

    `files` maps URL names to paths; every path must resolve to a regular file under `root`
    (checked here and again at each request). Use as a context manager, or start()/stop().
    """

    def __init__(self, files: Mapping[str, Path], root: Path, host: str = "127.0.0.1", port: int = 3000,
                 token: Optional[str] = None, on_transfer: Optional[Callable[[Transfer], None]] = None):
        self.root = Path(os.path.realpath(root))
        self.host = host
        self.token = token if token is not None else secrets.token_urlsafe(16)
        self.on_transfer = on_transfer
        if not TOKEN_PATTERN.fullmatch(self.token):
            raise ServerError("the server token must be at least 16 URL-safe characters (A-Z a-z 0-9 _ -)")
        if not 0 <= port <= 65535:
            raise ServerError(f"port {port} is out of range", fix="use a port from 1 to 65535, or 0 for a free one")
        self._port = port
        self.files: Dict[str, Path] = {}
        for name, path in files.items():
            _check_name(name)
            real = _inside(Path(path), self.root)
            if real is None:
                raise ServerError(f"{path} resolves to {os.path.realpath(path)}, outside the working directory {self.root}",
                                  fix="copy or move the file into the working directory instead of linking to it")
            if not real.is_file():
                raise ServerError(f"{path} is {'not a regular file' if real.exists() else 'missing'}",
                                  fix="serve regular files inside the working directory")
            self.files[name] = Path(path)
        self._lock = threading.Lock()
        self._listener: Optional["_Listener"] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one when 0 was asked), else the requested one."""
        listener = self._listener
        return listener.server_address[1] if listener else self._port

    @property
    def url(self) -> str:
        return f"http://{_hostport(self.host, self.port)}/{self.token}/"

    def url_for(self, name: str) -> str:
        if name not in self.files:
            raise KeyError(name)
        return self.url + quote(name, safe="")

    def start(self) -> "PackageServer":
        with self._lock:
            if self._listener is not None:
                return self
            try:
                family, _, _, _, address = socket.getaddrinfo(self.host, self._port, type=socket.SOCK_STREAM)[0]
            except socket.gaierror as err:
                raise ServerError(f"cannot listen on {self.host}: {err.strerror}",
                                  fix="--host takes an address of this machine, e.g. 127.0.0.1") from None
            try:
                self._listener = _Listener(address, family, self)
            except OSError as err:
                raise _bind_error(err, self.host, self._port) from None
            self._thread = threading.Thread(target=self._listener.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"package-server-{self.port}", daemon=True)
            self._thread.start()
            return self

    def stop(self) -> None:
        """Stop listening and cut open connections; returns within about half a second."""
        with self._lock:
            listener, thread = self._listener, self._thread
            self._listener = self._thread = None
        if listener is None or thread is None:
            return
        listener.shutdown()
        listener.close_connections(STOP_TIMEOUT)
        listener.server_close()
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
        real = _inside(path, self.root) if path is not None else None
        return (name, real) if name is not None and real is not None else None

    def report(self, transfer: Transfer) -> None:
        if self.on_transfer is not None:
            self.on_transfer(transfer)


class _Listener(ThreadingHTTPServer):
    """Thread per connection; keeps track of open connections so that stop() can cut them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple, family: int, owner: PackageServer):
        self.address_family = family
        self.owner = owner
        self._lock = threading.Lock()
        self._active: Dict[socket.socket, threading.Thread] = {}
        self._closing = False
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)      # HTTPServer's would do a reverse DNS lookup
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def finish_request(self, request, client_address) -> None:
        with self._lock:
            if self._closing:
                return
            self._active[request] = threading.current_thread()
        try:
            super().finish_request(request, client_address)
        finally:
            with self._lock:
                self._active.pop(request, None)

    def close_connections(self, timeout: float) -> None:
        with self._lock:
            self._closing = True
            active = list(self._active.items())
        for sock, _ in active:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, thread in active:
            thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request, client_address) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError):              # a client going away is not worth a line
            sys.stderr.write(f"package server: {type(err).__name__}: {err}\n")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ascend-build"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"
    server: _Listener

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet: no line per request
        pass

    def __getattr__(self, name: str):
        if name.startswith("do_"):                    # any method but GET and HEAD
            return self._not_allowed
        raise AttributeError(name)

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _not_allowed(self) -> None:
        self._fail(HTTPStatus.METHOD_NOT_ALLOWED, [("Allow", "GET, HEAD")], close=True)

    def _fail(self, status: HTTPStatus, headers: Sequence[Tuple[str, str]] = (), close: bool = False) -> None:
        text = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)

    def _serve(self, body: bool) -> None:
        started = time.monotonic()
        if len(self.path) > MAX_TARGET:
            return self._fail(HTTPStatus.REQUEST_URI_TOO_LONG, close=True)
        found = self.server.owner.resolve(self.path)
        if found is None:
            return self._fail(HTTPStatus.NOT_FOUND)
        name, real = found
        try:
            file = open(real, "rb")
        except OSError:
            return self._fail(HTTPStatus.NOT_FOUND)
        with file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                return self._fail(HTTPStatus.NOT_FOUND)
            size = info.st_size
            try:
                span = None if self.headers.get("If-Range") else byte_range(self.headers.get("Range"), size)
            except RangeNotSatisfiable:
                return self._fail(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, [("Content-Range", f"bytes */{size}")])
            first, last = span if span else (0, size - 1)
            length = last - first + 1
            status = HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True))
            if span:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if body:
                sent = self._send_body(file, first, length)
                self.server.owner.report(Transfer(name, sent, time.monotonic() - started, sent == length, status.value))

    def _send_body(self, file, offset: int, count: int) -> int:
        """sendfile() the span; returns the bytes sent (fewer when the client went away)."""
        file.seek(offset)
        try:
            if count:
                self.connection.sendfile(file, offset, count)
        except OSError:
            pass
        sent = file.tell() - offset
        if sent != count:
            self.close_connection = True
        return sent


def default_files(workdir: Path) -> Dict[str, Path]:
    """The files `serve` offers when none are named: packages and requirements at the top of
    the working directory and of its packages/ folder (hidden files left out)."""
    files: Dict[str, Path] = {}
    for folder in (Path(workdir), Path(workdir) / "packages"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or not path.name.endswith(PACKAGE_SUFFIXES) or not path.is_file():
                continue
            if path.name in files:
                raise ServerError(f"{path.name} is both {files[path.name]} and {path}",
                                  fix="remove one of them, or name the files to serve: ascend-build serve FILE...")
            files[path.name] = path
    return files


def files_to_serve(workdir: Path, names: Optional[List[str]]) -> Dict[str, Path]:
    """The named files (relative to workdir), or default_files(workdir); never empty."""
    if not names:
        files = default_files(workdir)
    else:
        files = {}
        for name in names:
            path = Path(workdir) / name
            if path.name in files:
                raise ServerError(f"two files are named {path.name}: {files[path.name]} and {path}",
                                  fix="serve files with different names")
            files[path.name] = path
    if not files:
        raise ServerError(f"nothing to serve in {workdir}",
                          fix=f"put the packages ({', '.join(PACKAGE_SUFFIXES)}) there or in packages/, or name them: ascend-build serve FILE...")
    return files


def transfer_line(transfer: Transfer) -> str:
    """One line about a transfer, for people."""
    mb = transfer.bytes / 1e6
    rate = mb / transfer.seconds if transfer.seconds > 0 else 0.0
    state = "sent" if transfer.complete else "interrupted"
    return f"{state} {transfer.file}: {mb:.1f} MB in {transfer.seconds:.1f} s ({rate:.0f} MB/s, HTTP {transfer.status})"
