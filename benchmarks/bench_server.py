"""Package server throughput: ours vs nginx vs `python3 -m http.server`, same run, loopback.

Serves one 1 GiB file with each server, downloads it with 1 and with 4 concurrent clients
(curl when present, else a Python client; the same client for every server), and prints the
min/median/max MB/s of several runs and the ratios ours/nginx and ours/http.server. nginx is
installed with apt-get when missing and running as root; otherwise it is left out, with a message.

    .venv/bin/python benchmarks/bench_server.py [--size-mib 1024] [--runs 5]

Run by hand (not in CI). Everything lives in a temporary folder that is removed at the end.
"""
import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from common import need, ratio_spread, spread

NAME = "bench.bin"
NGINX = "/usr/sbin/nginx"
OURS = """
import sys
from pathlib import Path
from ascend_build.server import PackageServer
www = Path(sys.argv[1])
with PackageServer({%r: www / %r}, host="127.0.0.1", port=int(sys.argv[2])) as server:
    print(server.url_for(%r), flush=True)
    server.wait()
""" % (NAME, NAME, NAME)

NGINX_CONF = """
user root;
daemon off;
master_process on;
worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {www};
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_file(path: Path, size: int) -> None:
    chunk = 16 << 20
    with path.open("wb") as out:
        left = size
        while left:
            out.write(os.urandom(min(chunk, left)))
            left -= min(chunk, left)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    host, port = url.split("/")[2].split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {proc.args}")
        try:
            conn = http.client.HTTPConnection(host, int(port), timeout=2)
            conn.request("HEAD", "/" + url.split("/", 3)[3])
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not answer {url}")


def start_ours(tmp: Path, www: Path) -> Tuple[subprocess.Popen, str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen([sys.executable, "-c", OURS, str(www), str(free_port())],
                            stdout=subprocess.PIPE, text=True, env=env)
    url = proc.stdout.readline().strip()
    return proc, url


def start_nginx(tmp: Path, www: Path) -> Tuple[subprocess.Popen, str]:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, www=www, port=port))
    proc = subprocess.Popen([need("nginx", "nginx", NGINX), "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c", str(conf)])
    return proc, f"http://127.0.0.1:{port}/{NAME}"


def start_http_server(tmp: Path, www: Path) -> Tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(www),
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}/{NAME}"


def curl_download(url: str, clients: int) -> None:
    procs = [subprocess.Popen(["curl", "-s", "-f", "-o", "/dev/null", url]) for _ in range(clients)]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"curl failed: {codes}")


def python_download(url: str, clients: int) -> None:
    host, port = url.split("/")[2].split(":")
    path = "/" + url.split("/", 3)[3]
    errors: List[BaseException] = []

    def one() -> None:
        try:
            conn = http.client.HTTPConnection(host, int(port))
            conn.request("GET", path)
            resp = conn.getresponse()
            buf = bytearray(1 << 20)
            while resp.readinto(buf):
                pass
            conn.close()
        except BaseException as err:  # noqa: BLE001 - reported by the caller
            errors.append(err)

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"download failed: {errors[0]}")


def measure(download: Callable[[str, int], None], url: str, clients: int, size: int) -> float:
    started = time.perf_counter()
    download(url, clients)
    return clients * size / (time.perf_counter() - started) / 1e6


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    size = args.size_mib << 20
    download = curl_download if shutil.which("curl") else python_download
    servers = {"ours": start_ours, "nginx": start_nginx, "http.server": start_http_server}
    if not need("nginx", "nginx", NGINX):
        print(f"nginx is not installed ({NGINX}) and cannot be installed here (not root): "
              "left out; install it (apt-get install nginx) for the ours/nginx ratio")
        del servers["nginx"]
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-"))
    procs: List[subprocess.Popen] = []
    try:
        www = tmp / "www"
        www.mkdir()
        make_file(www / NAME, size)
        urls: Dict[str, str] = {}
        for label, start in servers.items():
            proc, url = start(tmp, www)
            procs.append(proc)
            wait_ready(url, proc)
            urls[label] = url
        print(f"file {args.size_mib} MiB, client {download.__name__.split('_')[0]}, {args.runs} runs, "
              f"{os.cpu_count()} CPUs, MB/s min/median/max, 1 MB = 10^6 bytes")
        for clients in (1, 4):
            rates: Dict[str, List[float]] = {label: [] for label in urls}
            for label, url in urls.items():                      # warm-up (page cache, connections)
                measure(download, url, clients, size)
            for _ in range(args.runs):                           # interleaved, so drift hits all alike
                for label, url in urls.items():
                    rates[label].append(measure(download, url, clients, size))
            print(f"{clients} client{'s' if clients > 1 else ''}: "
                  + "  ".join(f"{label} {spread(rates[label], '{:.0f}')}" for label in urls))
            for other in (label for label in urls if label != "ours"):
                print(f"  ours/{other} {ratio_spread(rates['ours'], rates[other])}")
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
