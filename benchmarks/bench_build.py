"""Build benchmarks (run by hand, not in CI): ratios against baselines measured in the same run.

1. image bytes per delivery (http, mount) vs the COPY baseline, and (image - base) / installed bytes;
2. a no-change rebuild with ascend-build vs a plain `docker build` of the same rendered Dockerfile;
3. a full build (--no-cache) vs the original guide's manual method: `python3 -m http.server` in the
   package folder + `docker build` of the same Dockerfile.

    python benchmarks/bench_build.py [--filler 64MiB] [--runs 3]
Needs a docker daemon and the base image (scripts/make-base-image.sh). Loopback/bridge only.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ascend_build.engines.network import bridge_gateway

CLI = [sys.executable, "-m", "ascend_build"]
DOCKER = os.environ.get("ASCEND_BUILD_DOCKER", "/usr/bin/docker")


def ab(*args, check=True):
    result = subprocess.run([*CLI, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        sys.exit(f"ascend-build {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result


def timed(fn):
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def build(workdir, *args):
    report = workdir.parent / "report.json"
    ab("build", "-C", str(workdir), "--report", str(report), "--docker-bin", DOCKER, *args)
    return json.loads(report.read_text())


def installed_bytes(image):
    out = subprocess.run([DOCKER, "run", "--rm", "--entrypoint", "du", image, "-sb", "/usr/local/Ascend",
                          "/usr/local/lib/python3.11/dist-packages"], capture_output=True, text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--filler", default="64MiB")
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ab-bench-"))
    try:
        workdir = root / "w"
        ab("init", "--demo", str(workdir), "--filler", opts.filler)

        print("== 1. image bytes per delivery (target mindie, BuildKit)")
        sizes = {}
        for delivery in ("copy", "http", "mount"):
            report = build(workdir, "--engine", "buildkit", "--delivery", delivery, "-t", f"ab-bench:{delivery}", "--no-cache")
            sizes[delivery] = report["size_bytes"] - report["base_size_bytes"]
            inst = installed_bytes(f"ab-bench:{delivery}")
            print(f"  {delivery:5s} image-base {sizes[delivery] / 2**20:8.1f} MiB   installed {inst / 2**20:8.1f} MiB   "
                  f"(image-base)/installed {sizes[delivery] / inst:.2f}")
        for delivery in ("http", "mount"):
            print(f"  {delivery} vs copy baseline: {sizes[delivery] / sizes['copy']:.2f}x the bytes")

        print("== 2. no-change rebuild: ascend-build vs plain docker build of the same Dockerfile")
        build(workdir, "--engine", "docker", "-t", "ab-bench:http")
        ctx = workdir / ".ascend-build" / "context"
        gateway = bridge_gateway(DOCKER)
        token = (workdir / ".ascend-build" / "server-token").read_text().strip()
        url = f"http://{gateway}:3000/{token}/"  # what the build passed: same value, same cache
        ours = [timed(lambda: build(workdir, "--engine", "docker", "-t", "ab-bench:http")) for _ in range(opts.runs)]
        env = dict(os.environ, DOCKER_BUILDKIT="0")
        plain = [timed(lambda: subprocess.run([DOCKER, "build", "-q", "--force-rm", "--build-arg", f"ASCEND_PKG_URL={url}", "-t", "ab-bench:plain",
                                               "--target", "mindie", str(ctx)], env=env, check=True, capture_output=True))
                 for _ in range(opts.runs)]
        print(f"  ascend-build {statistics.median(ours):.2f} s, plain docker build {statistics.median(plain):.2f} s, "
              f"ratio {statistics.median(ours) / statistics.median(plain):.2f}")

        print("== 3. full build: ascend-build vs python3 -m http.server + docker build (classic builder, --no-cache)")
        ours = [timed(lambda: build(workdir, "--engine", "docker", "-t", "ab-bench:full", "--no-cache")) for _ in range(opts.runs)]
        manual = []
        served = root / "served"  # the guide serves one folder holding every file the stages fetch
        served.mkdir()
        for path in [*(workdir / "packages").iterdir(), workdir / "requirements.txt"]:
            (served / path.name).symlink_to(path)
        for _ in range(opts.runs):
            port = free_port()
            server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", gateway],
                                      cwd=served, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            try:
                manual.append(timed(lambda: subprocess.run(
                    [DOCKER, "build", "-q", "--force-rm", "--no-cache", "--build-arg", f"ASCEND_PKG_URL=http://{gateway}:{port}/",
                     "-t", "ab-bench:manual", "--target", "mindie", str(ctx)], env=env, check=True, capture_output=True)))
            finally:
                server.terminate()
                server.wait()
        print(f"  ascend-build {statistics.median(ours):.2f} s, manual method {statistics.median(manual):.2f} s, "
              f"ratio {statistics.median(ours) / statistics.median(manual):.2f}")
    finally:
        for tag in ("copy", "http", "mount", "plain", "full", "manual"):
            subprocess.run([DOCKER, "rmi", "-f", f"ab-bench:{tag}"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
