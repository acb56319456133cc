"""The package server: allow-list, token path, path tricks, ranges, concurrency, aborts, stop,
binding errors, file selection, bridge gateway lookup, and `ascend-build serve` end to end.
Loopback (127.0.0.1) and port 0 only; no container engine needed."""
import contextlib
import hashlib
import http.client
import os
import queue
import random
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clirun import CLI
from ascend_build.engines.network import bridge_gateway
from ascend_build.catalog.scan import scan
from ascend_build.errors import PackageError, ServerError
from ascend_build.server import (
    Limits,
    PackageServer,
    RangeNotSatisfiable,
    Transfer,
    body_length,
    byte_range,
    default_files,
    files_to_serve,
    requested_name,
)

SECRET = b"TOP-SECRET-NOT-SERVED"
HUGE = 4 << 30


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """root/ with served files and a secret one, next to outside/ with another secret."""
    base = tmp_path_factory.mktemp("srv")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "a.run").write_bytes(payload(3 << 20, 1))
    (root / "big.run").write_bytes(payload(8 << 20, 2))
    with (root / "huge.run").open("wb") as huge:                # sparse: more than socket buffers hold
        huge.truncate(HUGE)
    (root / "small.txt").write_bytes(b"0123456789abcdefghij")
    (root / "empty.txt").write_bytes(b"")
    (root / "my pkg%.whl").write_bytes(b"odd name")
    (root / "secret.txt").write_bytes(SECRET)
    (root / "sub").mkdir()
    (root / "sub" / "secret.txt").write_bytes(SECRET)
    (outside / "secret.txt").write_bytes(SECRET)
    return base


@pytest.fixture
def root(tree) -> Path:
    return tree / "root"


class Recorder:
    """on_transfer callback that lets a test wait for reports."""

    def __init__(self):
        self.items: List[Transfer] = []
        self.cond = threading.Condition()

    def __call__(self, transfer: Transfer) -> None:
        with self.cond:
            self.items.append(transfer)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> List[Transfer]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= count, timeout), f"got {self.items}"
            return list(self.items)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(root, recorder):
    names = ["a.run", "big.run", "huge.run", "small.txt", "empty.txt", "my pkg%.whl"]
    with PackageServer({n: root / n for n in names}, port=0, on_transfer=recorder) as srv:
        yield srv


def raw(srv: PackageServer, target: bytes, method: bytes = b"GET", headers: bytes = b"") -> Tuple[int, http.client.HTTPResponse, bytes]:
    """Send a request target byte for byte (no client-side normalisation)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + headers + b"\r\n")
        resp = http.client.HTTPResponse(sock, method=method.decode())
        resp.begin()
        return resp.status, resp, resp.read()


def get(srv: PackageServer, name: str, headers: Optional[dict] = None) -> Tuple[int, http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("GET", srv.url_for(name).split(str(srv.port), 1)[1], headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp, resp.read()
    finally:
        conn.close()


def tok(srv: PackageServer) -> bytes:
    return srv.token.encode()


# -- serving ---------------------------------------------------------------------------------


def test_get_serves_the_file_with_headers(server, root, recorder):
    status, resp, body = get(server, "a.run")
    assert status == 200
    assert body == (root / "a.run").read_bytes()
    assert resp.getheader("Content-Length") == str(3 << 20)
    assert resp.getheader("Accept-Ranges") == "bytes"
    assert resp.getheader("Content-Type") == "application/octet-stream"
    [transfer] = recorder.wait_for(1)
    assert (transfer.file, transfer.bytes, transfer.complete, transfer.status) == ("a.run", 3 << 20, True, 200)
    assert transfer.seconds >= 0


def test_url_shape_and_quoted_names(server):
    assert re.fullmatch(rf"http://127\.0\.0\.1:{server.port}/[A-Za-z0-9_-]{{16,}}/", server.url)
    assert server.port != 0
    assert server.url_for("my pkg%.whl") == server.url + "my%20pkg%25.whl"
    status, _, body = get(server, "my pkg%.whl")
    assert (status, body) == (200, b"odd name")
    with pytest.raises(KeyError):
        server.url_for("secret.txt")


def test_ipv6_url_is_bracketed(root):
    srv = PackageServer({"a.run": root / "a.run"}, host="::1", port=3000, token="t" * 16)
    assert srv.url == "http://[::1]:3000/tttttttttttttttt/"


def test_tokens_are_random_and_url_safe(root):
    tokens = {PackageServer({}).token for _ in range(5)}
    assert len(tokens) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16,}", t) for t in tokens)
    for bad in ("short", "has/slash/in/it/ok", "spaces are not ok here", "%2e%2e%2e%2e%2e%2e%2e%2e"):
        with pytest.raises(ServerError):
            PackageServer({}, token=bad)


def test_empty_file(server):
    status, resp, body = get(server, "empty.txt")
    assert (status, body, resp.getheader("Content-Length")) == (200, b"", "0")


def test_query_string_is_ignored(server, root):
    status, _, body = raw(server, b"/" + tok(server) + b"/small.txt?v=1&x=/../secret.txt")
    assert (status, body) == (200, (root / "small.txt").read_bytes())


def test_head_sends_headers_only_and_keeps_the_connection(server, recorder):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    path = "/" + server.token + "/small.txt"
    conn.request("HEAD", path)
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("Content-Length"), resp.getheader("Accept-Ranges")) == (200, "20", "bytes")
    assert resp.read() == b""
    sock = conn.sock
    conn.request("GET", path)                       # a stray HEAD body would break this response
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"0123456789abcdefghij")
    conn.request("GET", path, headers={"Range": "bytes=2-4"})
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (206, b"234")
    assert conn.sock is sock                        # one keep-alive connection for all three
    conn.close()
    assert [t.status for t in recorder.wait_for(2)] == [200, 206]  # HEAD is not a transfer


# -- what must never be served -------------------------------------------------------------------

TRICKS = [
    b"/{t}/../secret.txt",
    b"/{t}/..%2fsecret.txt",
    b"/{t}/%2e%2e/secret.txt",
    b"/{t}/%2E%2E%2Fsecret.txt",
    b"/{t}/%252e%252e%252fsecret.txt",
    b"/{t}/sub/../secret.txt",
    b"/{t}/sub/secret.txt",
    b"/{t}/sub%2fsecret.txt",
    b"/{t}/./secret.txt",
    b"/{t}//secret.txt",
    b"//{t}/secret.txt",
    b"/{t}/../../outside/secret.txt",
    b"/{t}/%2e%2e/%2e%2e/outside/secret.txt",
    b"/{t}/{root}/secret.txt",
    b"/{t}/%2f{root}%2fsecret.txt",
    b"{root}/secret.txt",
    b"/{t}/..\\secret.txt",
    b"/{t}/%5c..%5csecret.txt",
    b"/{t}\\secret.txt",
    b"/{t}/secret.txt%00a.run",
    b"/{t}/secret.txt\x00a.run",
    b"/{t}/a.run%00",
    b"/{t}/a.run/",
    b"/{t}/a.run/../secret.txt",
    b"/{t}/%ff",
    b"/{t}/secret.txt",
    b"/{t}/.",
    b"/{t}/..",
    b"http://127.0.0.1/{t}/secret.txt",
    b"*",
]


@pytest.mark.parametrize("trick", TRICKS)
def test_path_tricks_never_reach_another_file(server, root, trick):
    target = trick.replace(b"{t}", tok(server)).replace(b"{root}", str(root).encode())
    status, _, body = raw(server, target)
    assert status in (400, 404)
    assert SECRET not in body
    assert get(server, "small.txt")[0] == 200      # the server is still fine


def test_overlong_paths_are_refused(server):
    assert raw(server, b"/" + tok(server) + b"/" + b"a" * 2000)[0] == 414
    assert raw(server, b"/" + tok(server) + b"/small.txt?" + b"x" * 2000)[0] == 414
    assert raw(server, b"/" + tok(server) + b"/" + b"../" * 400 + b"secret.txt")[0] == 414
    assert raw(server, b"/" + b"a" * 70000)[0] == 414   # longer than a request line may be


@pytest.mark.parametrize("target", [b"/", b"/{t}/", b"/{t}", b"/{t}/?", b"/index.html", b"/{t}/index.html"])
def test_no_listing_no_index(server, target):
    status, _, body = raw(server, target.replace(b"{t}", tok(server)))
    assert status == 404
    assert b"a.run" not in body and b"small" not in body


@pytest.mark.parametrize("prefix", ["wrong", "{t}x", "{t_short}", "{t_upper}", "%{t_hex}"])
def test_wrong_token_is_404(server, prefix):
    t = server.token
    token = prefix.format(t=t, t_short=t[:-1], t_upper=t.swapcase(), t_hex="%".join(f"{b:02x}" for b in t.encode()))
    assert token != t
    status, _, body = raw(server, f"/{token}/small.txt".encode())
    assert status == 404 and b"0123456789" not in body


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"get", b"FOO"])
def test_other_methods_are_405_with_allow(server, root, method):
    status, resp, _ = raw(server, b"/" + tok(server) + b"/small.txt", method=method,
                          headers=b"Content-Length: 5\r\n" if method in (b"POST", b"PUT") else b"")
    assert status == 405
    assert resp.getheader("Allow") == "GET, HEAD"
    assert (root / "small.txt").read_bytes() == b"0123456789abcdefghij"


# -- request framing (RFC 9112 section 6.3): no body is ever read as a request ------------------------


def exchange(srv: PackageServer, data: bytes) -> bytes:
    """Send `data` on one connection (no Connection: close) and read until the server closes it."""
    received = b""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
        sock.sendall(data)
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return received
            received += chunk


def request(srv: PackageServer, headers: bytes = b"", body: bytes = b"", method: bytes = b"GET") -> bytes:
    return method + b" /" + tok(srv) + b"/small.txt HTTP/1.1\r\nHost: test\r\n" + headers + b"\r\n" + body


def test_a_body_behind_conflicting_content_lengths_is_never_a_second_request(server):
    """Content-Length N then 0: a server taking the last value would read the body, a complete
    request for another file, as the next request. One 400, then the connection is closed."""
    smuggled = b"GET /" + tok(server) + b"/a.run HTTP/1.1\r\nHost: test\r\n\r\n"
    head = b"Content-Length: %d\r\nContent-Length: 0\r\n" % len(smuggled)
    answer = exchange(server, request(server, head, smuggled))
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1, answer[:300]


FRAMING = [b"Content-Length: 5\r\nContent-Length: 0\r\n", b"Content-Length: 0\r\nContent-Length: 5\r\n",
           b"Content-Length: 5, 6\r\n", b"Content-Length: 5,\r\n", b"Content-Length: abc\r\n", b"Content-Length: -1\r\n",
           b"Content-Length: +5\r\n", b"Content-Length: 0x5\r\n", b"Content-Length:\r\n", b"Content-Length: 1 2\r\n",
           b"Content-Length: \xb2\r\n", b"Content-Length: " + b"9" * 19 + b"\r\n",
           b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
           b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip, chunked\r\n", b"Transfer-Encoding: identity\r\n",
           b"transfer-encoding: \r\n"]


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
@pytest.mark.parametrize("headers", FRAMING, ids=[h.decode("latin-1").strip().replace("\r\n", " | ") for h in FRAMING])
def test_conflicting_or_unsupported_framing_is_400_and_close(server, recorder, headers, method):
    answer = exchange(server, request(server, headers, b"01234" + request(server), method))
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.count(b"HTTP/1.1 ") == 1, answer[:300]
    assert b"Connection: close" in answer
    assert recorder.items == []


@pytest.mark.parametrize("headers", [b"Content-Length: 0\r\n", b"Content-Length: 0\r\nContent-Length: 0\r\n",
                                     b"Content-Length: 0, 0\r\n", b"Content-Length:\t0 \r\n"])
def test_a_declared_empty_body_keeps_the_connection(server, headers):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request(server, headers) + request(server, b"Connection: close\r\n"))
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 ") == 2 and answer.count(b"0123456789abcdefghij") == 2, answer


@pytest.mark.parametrize("headers", [b"Content-Length: 5\r\n", b"Content-Length: 5\r\nContent-Length: 5\r\n",
                                     b"Content-Length: 5, 5\r\n"])
def test_a_body_of_one_agreed_length_is_skipped_and_the_connection_closed(server, headers):
    answer = exchange(server, request(server, headers, b"01234" + request(server)))
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in answer


@pytest.mark.parametrize("fields,length", [([], 0), ([("content-length", "7")], 7), ([("content-length", " 7 , 7")], 7),
                                           ([("content-length", "7"), ("host", "x"), ("content-length", "7")], 7)])
def test_body_length(fields, length):
    assert body_length(fields) == length


@pytest.mark.parametrize("fields", [[("content-length", "7"), ("content-length", "8")], [("content-length", "7,8")],
                                    [("content-length", "07"), ("content-length", "7")], [("content-length", "")],
                                    [("content-length", "\u0667")], [("transfer-encoding", "chunked")],
                                    [("transfer-encoding", "chunked"), ("content-length", "7")]])
def test_body_length_refuses(fields):
    with pytest.raises(ValueError):
        body_length(fields)


# -- construction checks ----------------------------------------------------------------------------


def test_a_link_is_served_from_its_target(tree, root):
    """Packages kept in a shared store and linked into the working directory are common: the
    catalog decides which files are planned, the server serves what a planned link points to."""
    link = root / "store.run"
    link.symlink_to(tree / "outside" / "secret.txt")
    try:
        with PackageServer({"store.run": link}, port=0) as srv:
            assert srv.files["store.run"] == (tree / "outside" / "secret.txt").resolve()
            assert get(srv, "store.run")[2] == SECRET
    finally:
        link.unlink()


def test_symlink_inside_the_root_is_served(root):
    link = root / "alias.run"
    link.symlink_to(root / "small.txt")
    try:
        with PackageServer({"alias.run": link}, port=0) as srv:
            assert get(srv, "alias.run")[2] == b"0123456789abcdefghij"
    finally:
        link.unlink()


def test_file_swapped_for_an_escaping_symlink_is_refused_at_request_time(tree, root):
    path = root / "swap.run"
    path.write_bytes(b"fine")
    try:
        with PackageServer({"swap.run": path}, port=0) as srv:
            assert get(srv, "swap.run")[2] == b"fine"
            path.unlink()
            path.symlink_to(tree / "outside" / "secret.txt")
            status, _, body = get(srv, "swap.run")
            assert status == 404 and SECRET not in body
    finally:
        path.unlink()


def test_file_swapped_for_a_fifo_is_refused_without_hanging(root):
    path = root / "swap-fifo.run"
    path.write_bytes(b"fine")
    try:
        with PackageServer({"swap-fifo.run": path, "small.txt": root / "small.txt"}, port=0) as srv:
            assert get(srv, "swap-fifo.run")[2] == b"fine"
            path.unlink()
            os.mkfifo(path)                              # nobody ever writes to it
            assert get(srv, "swap-fifo.run")[0] == 404   # the client timeout (10 s) guards a hang
            assert get(srv, "small.txt")[0] == 200
    finally:
        path.unlink()


def test_missing_or_not_regular_files_are_refused(root):
    with pytest.raises(ServerError, match="missing"):
        PackageServer({"nope.run": root / "nope.run"})
    with pytest.raises(ServerError, match="not a regular file"):
        PackageServer({"sub": root / "sub"})


@pytest.mark.parametrize("name", ["", ".", "..", "a/b.run", "a\\b.run", "a\x00.run", "a\n.run", "x" * 256])
def test_served_names_must_be_plain(root, name):
    with pytest.raises(ServerError):
        PackageServer({name: root / "small.txt"})


# -- ranges ----------------------------------------------------------------------------------------


def test_range_206(server, root, recorder):
    data = (root / "a.run").read_bytes()
    status, resp, body = get(server, "a.run", {"Range": "bytes=1000-1999"})
    assert (status, body) == (206, data[1000:2000])
    assert resp.getheader("Content-Range") == f"bytes 1000-1999/{len(data)}"
    assert resp.getheader("Content-Length") == "1000"
    [transfer] = recorder.wait_for(1)
    assert (transfer.bytes, transfer.complete, transfer.status) == (1000, True, 206)


def test_open_and_suffix_ranges(server, root):
    data = (root / "a.run").read_bytes()
    size = len(data)
    status, resp, body = get(server, "a.run", {"Range": f"bytes={size - 10}-"})
    assert (status, body, resp.getheader("Content-Range")) == (206, data[-10:], f"bytes {size - 10}-{size - 1}/{size}")
    status, resp, body = get(server, "a.run", {"Range": "bytes=-100"})
    assert (status, body, resp.getheader("Content-Range")) == (206, data[-100:], f"bytes {size - 100}-{size - 1}/{size}")
    status, resp, body = get(server, "a.run", {"Range": f"bytes=-{size * 2}"})
    assert (status, body) == (206, data)
    status, resp, body = get(server, "a.run", {"Range": f"bytes=5-{size * 2}"})
    assert (status, body, resp.getheader("Content-Range")) == (206, data[5:], f"bytes 5-{size - 1}/{size}")


def test_unsatisfiable_range_416(server, root):
    size = (root / "a.run").stat().st_size
    for value in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        status, resp, body = get(server, "a.run", {"Range": value})
        assert status == 416, value
        assert resp.getheader("Content-Range") == f"bytes */{size}"
    assert get(server, "empty.txt", {"Range": "bytes=0-"})[0] == 416


@pytest.mark.parametrize("value", ["bytes=0-1,5-6", "bytes=5-2", "items=0-5", "bytes=a-b", "bytes=-", "bytes=\u00b2-3"])
def test_ranges_to_ignore_send_the_whole_file(server, value):
    status, resp, body = get(server, "small.txt", {"Range": value})
    assert (status, body) == (200, b"0123456789abcdefghij")
    assert resp.getheader("Content-Range") is None


def test_if_range_sends_the_whole_file(server):
    status, _, body = get(server, "small.txt", {"Range": "bytes=0-1", "If-Range": '"some-etag"'})
    assert (status, body) == (200, b"0123456789abcdefghij")


@pytest.mark.parametrize("value", ["bytes={n}-", "bytes=0-{n}", "bytes=-{n}", "bytes={n}-{n}", "bytes=0000000000000000001-"])
def test_range_numbers_are_bounded(server, root, value):
    n = "9" * 4400                                   # past int()'s 4300-digit limit
    size = (root / "small.txt").stat().st_size
    with pytest.raises(RangeNotSatisfiable):
        byte_range(value.format(n=n), size)
    status, resp, _ = get(server, "small.txt", {"Range": value.format(n=n)})
    assert (status, resp.getheader("Content-Range")) == (416, f"bytes */{size}")
    assert get(server, "small.txt", {"Range": "bytes=-" + "9" * 70000})[0] == 431    # past the head limit
    assert get(server, "small.txt")[0] == 200


@given(st.integers(0, 2000), st.integers(0, 2000), st.integers(1, 1000))
def test_byte_range_matches_slicing(first, last, size):
    data = bytes(range(256)) * 4
    data = data[:size]
    try:
        span = byte_range(f"bytes={first}-{last}", size)
    except RangeNotSatisfiable:
        assert first >= size
        return
    if last < first:
        assert span is None
    else:
        a, b = span
        assert data[a:b + 1] == data[first:last + 1]
    assert byte_range(None, size) is None


@given(st.integers(1, 3000), st.integers(1, 1000))
def test_suffix_range_matches_slicing(n, size):
    data = (bytes(range(256)) * 4)[:size]
    a, b = byte_range(f"bytes=-{n}", size)
    assert data[a:b + 1] == data[-n:]


def test_requested_name():
    t = "T" * 16
    assert requested_name(f"/{t}/a.run", t) == "a.run"
    assert requested_name(f"/{t}/a%20b.run?x=1", t) == "a b.run"
    assert requested_name(f"/{t}/", t) is None
    assert requested_name(f"/{t}", t) is None
    assert requested_name(f"/{t[:-1]}/a.run", t) is None
    assert requested_name(f"/{t}/%2e%2e", t) == ".."       # decoded, then refused by the allow-list


# -- concurrency, aborts, stop -------------------------------------------------------------------


def test_concurrent_downloads_all_match(server, root, recorder):
    want = hashlib.sha256((root / "big.run").read_bytes()).hexdigest()
    results: List[str] = []

    def download():
        status, _, body = get(server, "big.run")
        results.append(hashlib.sha256(body).hexdigest() if status == 200 else str(status))

    threads = [threading.Thread(target=download) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [want] * 4
    transfers = recorder.wait_for(4)
    assert all(t.complete and t.bytes == 8 << 20 and t.file == "big.run" for t in transfers)


def slow_client(srv: PackageServer, name: str) -> socket.socket:
    """A client that asks for a file and reads only its first bytes."""
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    sock.sendall(f"GET /{srv.token}/{name} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    return sock


def test_aborted_client_does_not_disturb_others(server, root, recorder, capfd):
    aborted = slow_client(server, "huge.run")
    aborted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # reset, not FIN
    status, _, body = get(server, "a.run")
    assert status == 200 and body == (root / "a.run").read_bytes()
    aborted.close()
    second = slow_client(server, "huge.run")
    second.close()                                                   # plain close with unread data
    transfers = recorder.wait_for(3)
    cut = [t for t in transfers if t.file == "huge.run"]
    assert len(cut) == 2 and all(not t.complete and t.bytes < HUGE and t.status == 200 for t in cut)
    assert [t.complete for t in transfers if t.file == "a.run"] == [True]
    assert get(server, "small.txt")[0] == 200
    assert capfd.readouterr().err == ""                              # no tracebacks, no request log


def test_stop_within_a_second_while_clients_are_mid_download(root, recorder):
    srv = PackageServer({"huge.run": root / "huge.run"}, port=0, on_transfer=recorder).start()
    port = srv.port
    busy = slow_client(srv, "huge.run")
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)   # keep-alive, no request yet
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 1.0
    [transfer] = recorder.wait_for(1, timeout=1.0)
    assert not transfer.complete and transfer.bytes < (HUGE)
    received = 0
    try:
        while True:
            chunk = busy.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    except ConnectionResetError:
        pass
    assert received < HUGE
    try:
        assert idle.recv(10) == b""                              # closed: FIN ...
    except ConnectionResetError:
        pass                                                     # ... or reset (still in the backlog)
    busy.close()
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    started = time.monotonic()
    srv.stop()                                                   # idempotent
    assert time.monotonic() - started < 0.1


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server has closed (FIN or reset) a connection whose replies we ignore."""
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (BlockingIOError, socket.timeout):
        return False


def test_request_head_deadline_is_for_the_whole_head(root):
    """One byte every 0.1 s never resets the 0.5 s head deadline: the server closes the
    connection long before the client runs out of bytes to send."""
    with PackageServer({"small.txt": root / "small.txt"}, port=0, limits=Limits(head_seconds=0.5)) as srv:
        trickler = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        head = f"GET /{srv.token}/small.txt HTTP/1.1\r\nX-Pad: {'a' * 200}\r\n\r\n".encode()
        answer = b""
        for i in range(len(head)):
            try:
                trickler.send(head[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            trickler.setblocking(False)
            try:
                answer += trickler.recv(100)
                break
            except BlockingIOError:
                pass
            finally:
                trickler.setblocking(True)
        assert i < len(head) - 1, "the server read the whole trickled head"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
        trickler.close()
        idle = socket.create_connection(("127.0.0.1", srv.port), timeout=10)     # never sends anything
        assert idle.recv(10) == b""
        idle.close()
        assert get(srv, "small.txt")[0] == 200


def test_a_slow_reader_is_cut_though_it_keeps_reading(root, recorder):
    """The client takes 1 KiB every 0.05 s (20 KiB/s, never silent for long); the server wants
    64 KiB per 0.5 s window, so it cuts the transfer and reports it incomplete."""
    limits = Limits(send_seconds=0.5, send_progress=64 << 10)
    with PackageServer({"huge.run": root / "huge.run"}, port=0, on_transfer=recorder, limits=limits) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(f"GET /{srv.token}/huge.run HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        stop = threading.Event()

        def trickle():
            while not stop.is_set():
                try:
                    if not sock.recv(1024):
                        return
                except OSError:
                    return
                time.sleep(0.05)

        reader = threading.Thread(target=trickle, daemon=True)
        reader.start()
        try:
            [transfer] = recorder.wait_for(1, timeout=20)
        finally:
            stop.set()
            reader.join(5)
            sock.close()
        assert transfer.file == "huge.run" and not transfer.complete and transfer.bytes < HUGE


def test_connection_cap_evicts_idle_connections_then_refuses(root, recorder):
    with PackageServer({"huge.run": root / "huge.run", "small.txt": root / "small.txt"}, port=0,
                       on_transfer=recorder, limits=Limits(connections=4)) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(10)]
        assert get(srv, "small.txt")[0] == 200          # the longest waiting idle ones made room
        time.sleep(0.2)
        for sock in idle:
            sock.settimeout(0.2)
        assert sum(closed_by_server(sock) for sock in idle) >= 7
        busy = [slow_client(srv, "huge.run") for _ in range(4)]    # every slot sending
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        answer = b""
        try:
            while True:
                chunk = extra.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503")
        for sock in busy + idle + [extra]:
            sock.close()
        assert [t.file for t in recorder.wait_for(5) if not t.complete] == ["huge.run"] * 4   # slots free again
        status, _, body = get(srv, "small.txt")
        assert (status, body) == (200, b"0123456789abcdefghij")


EMFILE_SERVER = """
import os, sys
from pathlib import Path
from ascend_build.server import PackageServer
root = Path(sys.argv[1])
with PackageServer({"small.txt": root / "small.txt"}, port=0) as server:
    held = []
    while True:                                      # every free descriptor taken: accept() fails
        try:
            held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    print(server.url_for("small.txt"), flush=True)
    sys.stdin.readline()
    for fd in held:
        os.close(fd)
    print("freed", flush=True)
    sys.stdin.readline()
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
def test_out_of_file_descriptors_backs_off_then_serves(root):
    limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    proc = subprocess.Popen([sys.executable, "-c", EMFILE_SERVER, str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, preexec_fn=limit)
    try:
        url = proc.stdout.readline().strip()
        port, path = int(url.split("/")[2].rsplit(":", 1)[1]), "/" + url.split("/", 3)[3]
        client = socket.create_connection(("127.0.0.1", port), timeout=20)    # waits in the backlog
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        time.sleep(0.3)
        used = cpu_seconds(proc.pid)
        time.sleep(1.0)
        assert cpu_seconds(proc.pid) - used < 0.5          # paused, not spinning on accept()
        proc.stdin.write("free\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "freed"
        resp = http.client.HTTPResponse(client)
        resp.begin()
        assert (resp.status, resp.read()) == (200, b"0123456789abcdefghij")
        client.close()
    finally:
        proc.kill()
        proc.wait()


HALF_OPEN = 2000
TRICKLERS = 100


def raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and (hard == resource.RLIM_INFINITY or hard >= needed):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else needed, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        pytest.skip(f"needs {needed} open files, RLIMIT_NOFILE allows {soft} (hard limit {hard})")


@pytest.mark.parametrize("connections", [Limits().connections, 2 * HALF_OPEN + 100], ids=["default-cap", "no-eviction"])
def test_download_completes_while_2000_half_open_connections_are_held(root, connections):
    """2,000 connected sockets that never send a whole request (some send a partial one, some
    trickle a byte at a time) do not stop a normal download, nor does closing them all at once.
    With the default cap the server closes the longest waiting ones; with a cap above 2,000 it
    holds them all (each a descriptor, no thread)."""
    raise_open_files_limit(2 * HALF_OPEN + 500)
    want = hashlib.sha256((root / "big.run").read_bytes()).hexdigest()
    with PackageServer({"big.run": root / "big.run"}, port=0, limits=Limits(connections=connections)) as srv:
        held: List[socket.socket] = []
        try:
            for i in range(HALF_OPEN):
                sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                if i % 3 == 1:
                    sock.send(f"GET /{srv.token}/big.run HTTP/1.1\r\nHost: t\r\n".encode())
                held.append(sock)
            stop = threading.Event()

            def trickle():
                alive = held[-TRICKLERS:]
                while alive and not stop.wait(0.05):
                    for sock in list(alive):
                        try:
                            sock.send(b"X")
                        except OSError:
                            alive.remove(sock)

            trickler = threading.Thread(target=trickle, daemon=True)
            trickler.start()
            try:
                status, _, body = get_with_timeout(srv, "big.run", 60)
                assert status == 200 and hashlib.sha256(body).hexdigest() == want
                if connections > HALF_OPEN:                  # nothing was evicted: all still held
                    assert all(still_open(sock) for sock in held[:HALF_OPEN - TRICKLERS])
            finally:
                stop.set()
                trickler.join(5)
        finally:
            for sock in held:
                sock.close()
        status, _, body = get_with_timeout(srv, "big.run", 60)
        assert status == 200 and hashlib.sha256(body).hexdigest() == want


def still_open(sock: socket.socket) -> bool:
    """Neither closed nor reset by the server (nothing to read either)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def get_with_timeout(srv: PackageServer, name: str, timeout: float) -> Tuple[int, http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        conn.request("GET", "/" + srv.token + "/" + name)
        resp = conn.getresponse()
        return resp.status, resp, resp.read()
    finally:
        conn.close()


def test_port_in_use_is_a_clear_server_error(root):
    with PackageServer({}, port=0) as first:
        port = first.port
        with pytest.raises(ServerError) as caught:
            PackageServer({}, port=port).start()
    assert f"127.0.0.1:{port}" in caught.value.message and "in use" in caught.value.message
    assert "--port 0" in caught.value.fix


def test_address_not_on_this_machine_is_a_server_error(root):
    with pytest.raises(ServerError, match="not an address of this machine"):
        PackageServer({}, host="192.0.2.1", port=0).start()      # TEST-NET-1


# -- which files `serve` offers -----------------------------------------------------------------


TOOLKIT = "Ascend-cann-toolkit_8.0.RC3_linux-aarch64.run"
WHEEL = "torch_npu-2.1.0.post8-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"


def test_default_files_are_the_packages_check_identifies(tmp_path):
    names = (TOOLKIT, "requirements.txt", "requirements-extra.txt", "credentials.txt", "notes.txt", "backup.tgz",
             "x.tar.gz", "a.run", "notes.md", ".part.run", "ascend-build.yaml", "SHA256SUMS")
    for name in names:
        (tmp_path / name).write_text(name)
    (tmp_path / "dir.run").mkdir()
    (tmp_path / "packages" / "nested").mkdir(parents=True)
    (tmp_path / "packages" / WHEEL).write_text("w")
    (tmp_path / "packages" / "id_rsa.txt").write_text("secret")
    (tmp_path / "packages" / "nested" / TOOLKIT).write_text("deeper")
    assert default_files(scan(tmp_path)) == {
        TOOLKIT: tmp_path / TOOLKIT, "requirements.txt": tmp_path / "requirements.txt",
        "requirements-extra.txt": tmp_path / "requirements-extra.txt", WHEEL: tmp_path / "packages" / WHEEL,
    }
    (tmp_path / "packages" / TOOLKIT).write_text("twin")
    with pytest.raises(ServerError, match="Ascend-cann-toolkit"):
        default_files(scan(tmp_path))


def test_files_to_serve(tmp_path):
    (tmp_path / "a.run").write_text("a")
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / "b.whl").write_text("b")
    assert files_to_serve(tmp_path, ["a.run", "packages/b.whl"], None) == {"a.run": tmp_path / "a.run",
                                                                  "b.whl": tmp_path / "packages" / "b.whl"}
    with pytest.raises(ServerError, match="two files"):
        files_to_serve(tmp_path, ["a.run", "sub/a.run"], None)
    with pytest.raises(ServerError, match="not in the working directory"):
        files_to_serve(tmp_path / "packages", ["../a.run"], None)
    with pytest.raises(PackageError, match="missing.run cannot be read"):
        files_to_serve(tmp_path, ["missing.run"], None)
    with pytest.raises(ServerError, match="nothing to serve"):
        files_to_serve(tmp_path, None, scan(tmp_path))                    # a.run is no package `check` knows


def test_unreadable_and_special_files_are_refused_at_start(tmp_path):
    os.mkfifo(tmp_path / "fifo.run")
    (tmp_path / "loop.run").symlink_to("loop.run")
    with pytest.raises(ServerError, match="not a regular file"):
        PackageServer({"fifo.run": tmp_path / "fifo.run"})
    with pytest.raises(ServerError, match="unreadable"):
        PackageServer({"loop.run": tmp_path / "loop.run"})


# -- bridge gateway -------------------------------------------------------------------------------


def fake_docker(tmp_path: Path, body: str) -> str:
    script = tmp_path / "docker"
    script.write_text("#!/bin/sh\n"
                      '[ "$1 $2 $3" = "network inspect bridge" ] || exit 3\n' + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_bridge_gateway(tmp_path):
    assert bridge_gateway(fake_docker(tmp_path, "echo '172.17.0.1 '")) == "172.17.0.1"
    assert bridge_gateway(fake_docker(tmp_path, "echo 'fd00::1 172.18.0.1 '")) == "172.18.0.1"
    assert bridge_gateway(fake_docker(tmp_path, "echo 'fd00::1 '")) == "fd00::1"
    assert bridge_gateway(fake_docker(tmp_path, "echo ' '")) is None
    assert bridge_gateway(fake_docker(tmp_path, "echo 'Error: no such network' >&2; exit 1")) is None
    assert bridge_gateway(fake_docker(tmp_path, "echo garbage")) is None
    for unspecified in ("0.0.0.0", "::", "::ffff:0.0.0.0", "0.0.0.0/16"):
        assert bridge_gateway(fake_docker(tmp_path, f"echo '{unspecified},'")) is None
    assert bridge_gateway(fake_docker(tmp_path, "echo ':: 0.0.0.0 fd00::1 '")) == "fd00::1"
    assert bridge_gateway(str(tmp_path / "no-such-docker")) is None
    started = time.monotonic()
    assert bridge_gateway(fake_docker(tmp_path, "exec sleep 5"), timeout=0.5) is None
    assert time.monotonic() - started < 3


# -- `ascend-build serve` ---------------------------------------------------------------------------


def read_lines(stream, into: "queue.Queue[str]") -> None:
    for line in stream:
        into.put(line)
    into.put("")


def wait_for_line(lines: "queue.Queue[str]", pattern: str, timeout: float = 20.0) -> Tuple[re.Match, str]:
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen += line
        match = re.search(pattern, line)
        if match:
            return match, seen
        if line == "":
            break
    raise AssertionError(f"no {pattern!r} in output:\n{seen}")


@contextlib.contextmanager
def serving(workdir: Path, *args: str,
            env: Optional[dict] = None) -> Iterator[Tuple[subprocess.Popen, "queue.Queue[str]"]]:
    """`ascend-build serve -C WORKDIR ARGS` running until the block ends (killed if it runs then),
    and a queue of its stderr lines ("" at their end)."""
    proc = subprocess.Popen([*CLI, "serve", "-C", str(workdir), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=read_lines, args=(proc.stderr, lines), daemon=True).start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_command(tmp_path):
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / TOOLKIT).write_bytes(payload(1 << 20, 3))
    (tmp_path / "requirements.txt").write_text("numpy\n")
    (tmp_path / "credentials.txt").write_text("password\n")
    (tmp_path / "ascend-build.yaml").write_text("secret: yes\n")
    with serving(tmp_path, "--host", "127.0.0.1", "--port", "0") as (proc, lines):
        match, _ = wait_for_line(lines, r"(http://127\.0\.0\.1:(\d+)/[A-Za-z0-9_-]+/)")
        base, port = match.group(1), int(match.group(2))
        wget, seen = wait_for_line(lines, r"wget -q (\S+/Ascend-cann-toolkit\S+\.run)")
        assert wget.group(1) == base + TOOLKIT
        assert base + "requirements.txt" in seen and "credentials" not in seen
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", wget.group(1).split(str(port), 1)[1])
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, (tmp_path / "packages" / TOOLKIT).read_bytes())
        for name, secret in (("ascend-build.yaml", b"secret"), ("credentials.txt", b"password")):
            conn.request("GET", "/" + base.split("/")[3] + "/" + name)
            resp = conn.getresponse()
            assert resp.status == 404 and secret not in resp.read()
        conn.close()
        wait_for_line(lines, r"sent Ascend-cann-toolkit")

        second = subprocess.run([*CLI, "serve", "-C", str(tmp_path), "--host", "127.0.0.1", "--port", str(port)],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert f"127.0.0.1:{port}" in second.stderr and "--port 0" in second.stderr
        assert "Traceback" not in second.stderr

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 130
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        rest = "".join(iter(lambda: lines.get(timeout=5), ""))
        assert "Traceback" not in rest


def run_serve(tmp_path: Path, *args: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "serve", "-C", str(tmp_path), *args], capture_output=True, text=True,
                          timeout=30, env=env)


@pytest.mark.parametrize("args, message", [
    (["--host", "no-such-host.invalid"], "cannot listen on"),
    (["--host", "999.1.1.1"], "cannot listen on"),
    (["--host", "192.0.2.1"], "not an address of this machine"),
    (["--host", "x" * 300], "cannot listen on"),
    (["--host", "127.0.0.1", "../outside.run"], "not in the working directory"),
    (["--host", "127.0.0.1", "fifo.run"], "not a regular file"),
    (["--host", "127.0.0.1", "loop.run"], "symlink loop"),
    (["--host", "127.0.0.1", "nope.run"], "nope.run cannot be read"),
    (["--host", "127.0.0.1", "--port", "70000"], "out of range"),
])
def test_serve_errors_are_one_message(tmp_path, args, message):
    work = tmp_path / "work"
    work.mkdir()
    (work / TOOLKIT).write_text("t")
    (tmp_path / "outside.run").write_text("o")
    os.mkfifo(work / "fifo.run")
    if "loop.run" in args:                      # named only: the catalog scan is not this test's subject
        (work / "loop.run").symlink_to("loop.run")
    result = run_serve(work, *args, *([] if "--port" in args else ["--port", "0"]))
    assert result.returncode == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_serve_never_binds_an_unspecified_gateway(tmp_path):
    """A docker that reports the bridge gateway as 0.0.0.0: serve listens on 127.0.0.1 and says so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_docker(bin_dir, "echo '0.0.0.0,172.17.0.0/16 ::,'")
    (tmp_path / TOOLKIT).write_text("t")
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    with serving(tmp_path, "--port", "0", env=env) as (_, lines):
        _, seen = wait_for_line(lines, r"serving 1 files at http://127\.0\.0\.1:\d+/")
        assert "warning" in seen and "127.0.0.1 only" in seen
