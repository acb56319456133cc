"""`download()` against a server on 127.0.0.1 that misbehaves: it lies about Content-Length,
trickles, stalls, closes mid-body or sends more than the file; then serves Range properly. What
the index lists bounds what is written, a slow or broken download keeps its part for the next
run, and only other bytes remove it. No test touches anything but the loopback."""
import hashlib
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List, Optional

import pytest

from ascend_build.errors import ConfigError, PackageError
from ascend_build.fetch.download import download
from ascend_build.fetch.pace import Limits
from ascend_build.fetch.parts import claim, names
from ascend_build.fetch.resolve import Wheel

NAME = "tiny-1.0-py3-none-any.whl"
DATA = bytes(range(256)) * 3 + b"x" * 145          # 913 bytes
BIG = bytes(range(256)) * 64                       # 16 KiB: more than a trickle can send in a test
FAST = Limits(min_speed=1024, window=1.0, deadline=20)


class Server:
    """Serves one file at /<name>; `mode` says how it misbehaves for the next requests."""

    def __init__(self):
        self.data = DATA
        self.mode = "honest"
        self.ranges: List[Optional[str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.ranges.append(self.headers.get("Range"))
                data, start = server.data, 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and server.mode == "honest":
                    start = int(match.group(1))
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                body = data[start:]
                length = {"lie": str(10 ** 12), "more": None}.get(server.mode, str(len(body)))
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                try:
                    getattr(self, server.mode if server.mode != "lie" else "more")(body)
                except OSError:
                    pass                                # the client went away

            def honest(self, body):
                self.wfile.write(body)

            def more(self, body):                       # the file, then 64 KiB more
                self.wfile.write(body + bytes(64 << 10))

            def close(self, body):                      # half of it, then the connection closes
                self.wfile.write(body[:len(body) // 2])
                self.wfile.flush()
                self.close_connection = True

            def trickle(self, body):                    # 10 bytes a second
                for byte in body[:200]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.1)

            def stall(self, body):                      # 100 bytes, then nothing
                self.wfile.write(body[:100])
                self.wfile.flush()
                time.sleep(5)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{NAME}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wheel(self, size: Optional[int] = -1) -> Wheel:
        return Wheel(name="tiny", version="1.0", url=self.url, filename=NAME,
                     sha256=hashlib.sha256(self.data).hexdigest(), size=len(self.data) if size == -1 else size)


@pytest.fixture
def server():
    served = Server()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def parts(folder: Path) -> List[Path]:
    return [folder / n for n in names(folder, NAME)]


def test_a_content_length_that_disagrees_with_the_index_is_refused_before_the_body(server, tmp_path):
    server.mode = "lie"
    with pytest.raises(PackageError, match=r"announces 1000000000000 bytes .* index lists 913 .* refused before"):
        download(server.wheel(), tmp_path, limits=FAST)
    assert not (tmp_path / NAME).exists()
    assert sum(p.stat().st_size for p in parts(tmp_path)) == 0


def test_never_more_than_the_size_the_index_lists_is_written(server, tmp_path):
    server.mode = "more"                                # no Content-Length: the body runs on
    with pytest.raises(PackageError, match="sends more than the 913 bytes the index lists"):
        download(server.wheel(), tmp_path, limits=FAST)
    assert list(tmp_path.iterdir()) == []               # other bytes: the part is removed


def test_a_body_that_ends_short_is_an_interruption_and_the_next_run_resumes(server, tmp_path):
    server.mode = "close"
    with pytest.raises(PackageError) as caught:
        download(server.wheel(), tmp_path, limits=FAST)
    assert "stopped after 456 of 913 bytes" in caught.value.message and "other bytes" not in caught.value.message
    assert "run fetch again" in caught.value.fix and "Range" in caught.value.fix
    [part] = parts(tmp_path)
    assert part.read_bytes() == DATA[:456]
    server.mode = "honest"
    assert download(server.wheel(), tmp_path, limits=FAST).read_bytes() == DATA
    assert server.ranges[-1] == "bytes=456-" and parts(tmp_path) == []


def test_a_trickling_server_is_stopped_by_the_low_speed_limit_and_its_part_kept(server, tmp_path):
    server.data = BIG
    server.mode = "trickle"
    began = time.monotonic()
    with pytest.raises(PackageError, match="slower than 1.0 KiB/s over 1 s"):
        download(server.wheel(), tmp_path, limits=FAST)
    assert time.monotonic() - began < 5
    [part] = parts(tmp_path)
    kept = part.stat().st_size
    assert 0 < kept < 100 and part.read_bytes() == BIG[:kept]
    server.mode = "honest"
    assert download(server.wheel(), tmp_path, limits=FAST).read_bytes() == BIG
    assert server.ranges[-1] == f"bytes={kept}-"


def test_a_download_that_goes_on_past_the_deadline_is_stopped(server, tmp_path):
    server.data = BIG
    server.mode = "trickle"
    began = time.monotonic()
    with pytest.raises(PackageError, match=r"longer than 1.5 s \(ASCEND_BUILD_FETCH_DEADLINE\)"):
        download(server.wheel(), tmp_path, limits=Limits(min_speed=1, window=10, deadline=1.5))
    assert time.monotonic() - began < 5


def test_a_server_that_stops_sending_is_stopped_after_one_window(server, tmp_path):
    server.mode = "stall"
    began = time.monotonic()
    with pytest.raises(PackageError, match="stopped after 100 of 913 bytes: no byte came for 1 s"):
        download(server.wheel(), tmp_path, limits=FAST)
    assert time.monotonic() - began < 4
    assert [p.stat().st_size for p in parts(tmp_path)] == [100]


def test_a_complete_body_with_another_sha256_removes_the_part(server, tmp_path):
    server.data = bytes(len(DATA))
    wheel = Wheel(name="tiny", version="1.0", url=server.url, filename=NAME,
                  sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA))
    with pytest.raises(PackageError, match="refused"):
        download(wheel, tmp_path, limits=FAST)
    assert list(tmp_path.iterdir()) == []


def test_a_size_the_index_does_not_list_is_bounded_by_the_content_length(server, tmp_path):
    assert download(server.wheel(size=None), tmp_path, limits=FAST).read_bytes() == DATA
    (tmp_path / NAME).unlink()
    server.mode = "lie"
    with pytest.raises(PackageError, match="sends more than the 4096 bytes fetch takes when the index lists no size"):
        download(server.wheel(size=None), tmp_path, limits=Limits(window=1, unknown_size=4096))
    assert list(tmp_path.iterdir()) == []


def test_two_fetches_into_one_folder_never_write_the_same_part(server, tmp_path):
    held = claim(tmp_path, NAME)                        # another fetch is writing .NAME.part
    held.file.write(b"another run's bytes")
    held.file.flush()
    assert download(server.wheel(), tmp_path, limits=FAST).read_bytes() == DATA
    assert held.path.read_bytes() == b"another run's bytes" and server.ranges == [None]
    held.close()


def test_the_part_of_a_fetch_that_died_is_resumed(server, tmp_path):
    (tmp_path / f".{NAME}.0123abcd.part").write_bytes(DATA[:300])
    assert download(server.wheel(), tmp_path, limits=FAST).read_bytes() == DATA
    assert server.ranges == ["bytes=300-"] and parts(tmp_path) == []


def test_concurrent_downloads_of_one_wheel_both_end_with_the_file(server, tmp_path):
    server.data = BIG
    results, errors = [], []

    def run():
        try:
            results.append(download(server.wheel(), tmp_path, limits=FAST))
        except Exception as exc:                        # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and all(p.read_bytes() == BIG for p in results)
    assert parts(tmp_path) == []


@pytest.mark.parametrize("value", ["0", "-1", "fast", "inf", "nan"])
def test_limits_from_the_environment_are_checked(value):
    with pytest.raises(ConfigError, match="ASCEND_BUILD_FETCH_DEADLINE"):
        Limits.from_env({"ASCEND_BUILD_FETCH_DEADLINE": value})
    assert Limits.from_env({"ASCEND_BUILD_FETCH_MIN_SPEED": "10", "ASCEND_BUILD_FETCH_SPEED_TIME": "2"}) == \
        Limits(min_speed=10, window=2)
