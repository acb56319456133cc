"""Build benchmarks (run by hand, not in CI): ratios against baselines measured in the same run.

1. image bytes per delivery (http, mount) vs the COPY baseline, and (image - base) / installed bytes;
2. a no-change rebuild with ascend-build vs a plain `docker build` of the same rendered Dockerfile;
3. a full build (--no-cache) vs the original guide's manual method: `python3 -m http.server` in the
   package folder + `docker build` of the same Dockerfile.

Runs alternate (ours first in odd runs, the baseline first in even ones; part 3 starts with one
uncounted warm-up pair) and each line shows min/median/max over the runs, the
ratio of the medians and the spread of the per-run ratios, plus the median seconds per phase of
ascend-build (the report's `timings`). Each --filler value (bytes per stand-in package) is a
separate round, so cost growth with package size is visible:

    .venv/bin/python benchmarks/bench_build.py [--filler 64MiB --filler 512MiB] [--runs 5] [--parts 1,2,3]

Needs a docker daemon (ASCEND_BUILD_DOCKER, default /usr/bin/docker) and the base image
(scripts/make-base-image.sh); 7 packages of 512 MiB need about 12 GiB free. Loopback/bridge only.
Everything it makes (folders, images) is removed at the end. The tool runs as an installed one
does: with its byte code cached (PYTHONDONTWRITEBYTECODE is dropped for its runs).
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

from common import ratio_spread, spread

from ascend_build.engines.base import StageEvent
from ascend_build.engines.network import bridge_gateway
from ascend_build.engines.parse import parse_classic
from ascend_build.fastpath import BYPASS_ENV as FULL_ENV
from ascend_build.timings import PHASES

CLI = [sys.executable, "-m", "ascend_build"]
DOCKER = os.environ.get("ASCEND_BUILD_DOCKER", "/usr/bin/docker")
BASE_IMAGE = "localhost/ascend-build-base:bookworm"
CLI_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CLASSIC = dict(os.environ, DOCKER_BUILDKIT="0")


def ab(*args, check=True, env=None):
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, env={**CLI_ENV, **(env or {})})
    if check and result.returncode != 0:
        sys.exit(f"ascend-build {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result


def timed(fn):
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bench:
    """One round: a stand-in working directory with one filler size; what it built, to remove."""

    def __init__(self, root: Path, filler: str, runs: int, network: str):
        self.workdir, self.runs, self.filler, self.network = root / "w", runs, filler, network
        self.host = "127.0.0.1" if network == "host" else bridge_gateway(DOCKER)
        self.port = free_port()            # one port for the round: the URL (a build argument) stays the same
        self.images, self.timings, self.answered = set(), [], 0
        ab("init", "--demo", str(self.workdir), "--filler", filler)

    def build(self, *args, env=None):
        report = self.workdir.parent / "report.json"
        said = ab("build", "-C", str(self.workdir), "--report", str(report), "--docker-bin", DOCKER, "--port", str(self.port),
                  "--network", self.network, *args, env=env).stderr
        result = json.loads(report.read_text())
        self.images.add(result["image_id"])
        self.answered += "no change since the last build" in said
        return result

    def timed_build(self, *args, env=None, timings=None):
        started = time.monotonic()
        (self.timings if timings is None else timings).append(self.build(*args, env=env)["timings"])
        return time.monotonic() - started

    def docker_build(self, url, tag, *flags, stages=None):
        """`docker build` of the rendered context; with `stages` (a list), its output is read as the
        tool reads it and the seconds of each stage are appended."""
        iid = self.workdir.parent / "iid"
        cmd = [DOCKER, "build", *([] if stages is not None else ["-q"]), "--force-rm", "--network", self.network, *flags,
               "--build-arg", f"ASCEND_PKG_URL={url}", "-t", tag, "--iidfile", str(iid), "--target", "mindie",
               str(self.workdir / ".ascend-build" / "context")]
        if stages is None:
            subprocess.run(cmd, env=CLASSIC, check=True, capture_output=True)
        else:
            proc = subprocess.Popen(cmd, env=CLASSIC, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            events = parse_classic((line.rstrip("\n") for line in proc.stdout), lambda: proc.returncode != 0)
            stages.append({e.stage: e.seconds for e in events if isinstance(e, StageEvent) and e.status != "started"})
            if proc.wait() != 0:
                sys.exit(f"docker build of {tag} failed")
        self.images.add(iid.read_text().strip())

    def phases(self, taken=None) -> str:
        if taken is None:
            taken, self.timings = self.timings, []
        return ", ".join(f"{name} {statistics.median(t[name] for t in taken):.3f}" for name in PHASES)

    def sizes(self):
        print("== 1. image bytes per delivery (target mindie, BuildKit)")
        sizes = {}
        for delivery in ("copy", "http", "mount"):
            report = self.build("--engine", "buildkit", "--delivery", delivery, "-t", f"ab-bench:{delivery}", "--no-cache")
            sizes[delivery] = report["size_bytes"] - report["base_size_bytes"]
            inst = installed_bytes(f"ab-bench:{delivery}")
            print(f"  {delivery:5s} image-base {sizes[delivery] / 2**20:8.1f} MiB   installed {inst / 2**20:8.1f} MiB   "
                  f"(image-base)/installed {sizes[delivery] / inst:.2f}")
        for delivery in ("http", "mount"):
            print(f"  {delivery} vs copy baseline: {sizes[delivery] / sizes['copy']:.2f}x the bytes")

    def rebuild(self):
        print("== 2. no-change rebuild: ascend-build vs plain docker build of the same Dockerfile (s, min/median/max)")
        args = ("--engine", "docker", "-t", "ab-bench:http")
        self.build(*args)
        token = (self.workdir / ".ascend-build" / "server-token").read_text().strip()
        url = f"http://{self.host}:{self.port}/{token}/"  # what the build passed: same value, same cache
        self.docker_build(url, "ab-bench:plain")
        ours, full, plain, full_timings = [], [], [], []
        self.answered = 0
        for _ in range(self.runs):
            ours.append(self.timed_build(*args))
            plain.append(timed(lambda: self.docker_build(url, "ab-bench:plain")))
            full.append(self.timed_build(*args, env={FULL_ENV: "1"}, timings=full_timings))
        print(f"  ascend-build {spread(ours)} (answered by the no-change fast path: {self.answered} of {self.runs})   "
              f"plain docker build {spread(plain)}   ratio {ratio_spread(ours, plain)}")
        print(f"  ascend-build phases (median s): {self.phases()}")
        print(f"  without the fast path ({FULL_ENV}=1) {spread(full)}   ratio {ratio_spread(full, plain)}")
        print(f"  its phases (median s): {self.phases(full_timings)}")

    def full(self):
        print("== 3. full build: ascend-build vs python3 -m http.server + docker build (classic builder, --no-cache; s)")
        gateway = self.host
        served = self.workdir.parent / "served"  # the guide serves one folder holding every file the stages fetch
        served.mkdir(exist_ok=True)
        for path in [*(self.workdir / "packages").iterdir(), self.workdir / "requirements.txt"]:
            if not (served / path.name).exists():
                (served / path.name).symlink_to(path)
        ours, manual, our_stages, manual_stages = [], [], [], []

        def run_ours(times, stages):
            times.append(self.timed_build("--engine", "docker", "-t", "ab-bench:full", "--no-cache"))
            stages.append({s["name"]: s["seconds"] for s in json.loads((self.workdir.parent / "report.json").read_text())["stages"]})

        def run_manual(times, stages):
            port = free_port()
            server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", gateway],
                                      cwd=served, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            try:
                times.append(timed(lambda: self.docker_build(f"http://{gateway}:{port}/", "ab-bench:manual", "--no-cache",
                                                             stages=stages)))
            finally:
                server.terminate()
                server.wait()

        first, warm = [], []   # the warm-up pair (a new folder's first build also sources its set_env.sh files)
        run_ours(first, [])
        run_manual(warm, [])
        self.timings = []
        for n in range(self.runs):   # the order alternates, so that neither side always runs on a warmer cache
            pair = (run_ours, ours, our_stages), (run_manual, manual, manual_stages)
            for run, times, stages in (pair if n % 2 == 0 else pair[::-1]):
                run(times, stages)
        print(f"  warm-up pair (not counted): ascend-build {first[0]:.2f}, manual {warm[0]:.2f}")
        print(f"  ascend-build {spread(ours)}   manual method {spread(manual)}   ratio {ratio_spread(ours, manual)}")
        print(f"  ascend-build phases (median s): {self.phases()}")
        print("  the engine's own seconds per stage, ascend-build / manual (median): " + ", ".join(
            f"{name} {statistics.median(r.get(name, 0.0) for r in our_stages):.1f} / "
            f"{statistics.median(r.get(name, 0.0) for r in manual_stages):.1f}" for name in our_stages[0]))

    def clean(self):
        tags = [f"ab-bench:{t}" for t in ("copy", "http", "mount", "plain", "full", "manual")]
        subprocess.run([DOCKER, "rmi", "-f", *tags, *self.images], capture_output=True)


def bridge_up() -> bool:
    """The daemon's bridge gateway is an address of this machine (its interface exists)."""
    try:
        with socket.socket() as s:
            s.bind((bridge_gateway(DOCKER) or "", 0))
        return True
    except OSError:
        return False


def installed_bytes(image):
    out = subprocess.run([DOCKER, "run", "--rm", "--network", "none", "--entrypoint", "du", image, "-sb", "/usr/local/Ascend",
                          "/usr/local/lib/python3.11/dist-packages"], capture_output=True, text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--filler", action="append", help="bytes per stand-in package (repeatable; default 64MiB)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--parts", default="1,2,3", help="which parts to run, e.g. 2,3")
    parser.add_argument("--network", choices=("auto", "bridge", "host"), default="auto",
                        help="build network of every build (auto: bridge when its gateway is up here, else host)")
    opts = parser.parse_args()
    if subprocess.run([DOCKER, "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        sys.exit(f"needs a docker daemon answering {DOCKER} and the base image {BASE_IMAGE}: run scripts/make-base-image.sh "
                 "(or set ASCEND_BUILD_DOCKER to the client to use)")
    parts = {p.strip() for p in opts.parts.split(",")}
    network = opts.network if opts.network != "auto" else "bridge" if bridge_up() else "host"
    print(f"{os.cpu_count()} CPUs, {opts.runs} runs per figure, docker {DOCKER}, {network} network")
    for filler in opts.filler or ["64MiB"]:
        root = Path(tempfile.mkdtemp(prefix="ab-bench-"))
        bench = None
        try:
            print(f"#### {filler} per package")
            bench = Bench(root, filler, opts.runs, network)
            for part, run in (("1", bench.sizes), ("2", bench.rebuild), ("3", bench.full)):
                if part in parts:
                    run()
        finally:
            if bench:
                bench.clean()
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
