"""Concurrency stress run for issue #23 (run by hand, not in CI): several `ascend-build build`s at
once, as several people or a CI matrix start them, then a check that each got the right image and
that nothing was left behind.

For each engine (docker's classic builder, BuildKit):

1. one folder: 4 builds of ONE demo folder at once, different tags and targets, some with
   `--port 0`, some on the default port (they take turns on the folder's lock);
2. four folders: 4 builds of 4 separate demo folders at once, on the default port (one gets 3000,
   the others a free port).

Each build's exit status, wall time and whether it waited for the folder's lock are recorded; each
image's `io.ascend-build.target` label must equal the build's --target; afterwards no
`ascend-build-*` container this run started, no process of the run, no `.ascend-build/runs/*`
folder and no temporary file in the state folders may remain. It prints one table and exits 1
when any check failed:

    .venv/bin/python benchmarks/stress_concurrency.py [--engines docker,buildkit] [--filler 64KiB] [--cache] [--keep]

Needs a docker daemon with BuildKit and the base image (scripts/make-base-image.sh). Everything it
makes (folders, images tagged stress/*) is removed at the end unless --keep.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Set

CLI = [sys.executable, "-m", "ascend_build"]
DOCKER = os.environ.get("ASCEND_BUILD_DOCKER", "docker")
TARGETS_ONE = [("cann", ["--port", "0"]), ("pta", []), ("mindie", []), ("pta", ["--port", "0"])]
TARGETS_FOUR = [("cann", []), ("pta", []), ("mindie", []), ("mindie", [])]
TIMEOUT = 1800


@dataclass
class Run:
    scenario: str
    engine: str
    folder: str
    target: str
    extra: List[str]
    tag: str
    rc: Optional[int] = None
    seconds: float = 0.0
    waited: bool = False
    port: str = ""
    label: str = ""
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.label == self.target and not self.problem


@dataclass
class Scenario:
    name: str
    engine: str
    runs: List[Run] = field(default_factory=list)
    seconds: float = 0.0
    leftovers: List[str] = field(default_factory=list)


def containers() -> Set[str]:
    out = subprocess.run([DOCKER, "ps", "-a", "--filter", "name=ascend-build-", "--format", "{{.Names}}"],
                         capture_output=True, text=True).stdout
    return set(out.split())


def processes_of(root: Path) -> List[str]:
    """Processes whose command line names the run's folder (builds, engine clients, servers)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmd and int(pid) != os.getpid():
            found.append(f"pid {pid}: {cmd[:120]}")
    return found


def state_leftovers(folder: Path) -> List[str]:
    state = folder / ".ascend-build"
    runs = state / "runs"
    left = [f"{folder.name}/.ascend-build/runs/{p.name}" for p in (runs.iterdir() if runs.is_dir() else [])]
    left += [f"{folder.name}/{p.relative_to(folder)}" for p in state.rglob("*") if ".tmp" in p.name]
    left += [f"{folder.name}/{p.name}" for p in folder.iterdir() if p.name.endswith(".part") or ".tmp" in p.name]
    return left


def label_of(tag: str) -> str:
    out = subprocess.run([DOCKER, "image", "inspect", "--format", "{{json .Config.Labels}}", tag],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return "(no image)"
    return (json.loads(out.stdout) or {}).get("io.ascend-build.target", "(no label)")


def build(run: Run, no_cache: bool) -> Run:
    cmd = [*CLI, "build", "-C", run.folder, "-t", run.tag, "--target", run.target, "--engine", run.engine,
           *(["--no-cache"] if no_cache else []), *run.extra]
    began = time.monotonic()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        run.rc, text = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        run.rc, text = -1, f"timed out after {TIMEOUT} s: {exc}"
    run.seconds = time.monotonic() - began
    run.waited = "waiting for it to end" in text
    served = re.search(r"serving \d+ files on \S+:(\d+)", text)
    run.port = served.group(1) if served else "-"
    if "Traceback" in text:
        run.problem = "traceback"
    elif run.rc != 0:
        run.problem = " ".join(text.strip().splitlines()[-2:])[:160]
    run.label = label_of(run.tag)
    return run


def scenario(name: str, engine: str, folders: List[Path], targets, no_cache: bool, root: Path) -> Scenario:
    result = Scenario(name, engine)
    before = containers()
    for i, (target, extra) in enumerate(targets):
        folder = folders[i % len(folders)]
        result.runs.append(Run(name, engine, str(folder), target, extra,
                               f"stress/{name.replace(' ', '-')}-{engine}-{i}:{target}"))
    began = time.monotonic()
    with ThreadPoolExecutor(len(result.runs)) as pool:
        list(pool.map(lambda r: build(r, no_cache), result.runs))
    result.seconds = time.monotonic() - began
    time.sleep(2)                                   # a container being removed has 2 s to go
    result.leftovers += [f"container {c}" for c in sorted(containers() - before)]
    result.leftovers += processes_of(root)
    for folder in folders:
        result.leftovers += state_leftovers(folder)
    return result


def make_folders(root: Path, prefix: str, count: int, filler: str) -> List[Path]:
    folders = []
    for i in range(count):
        folder = root / f"{prefix}{i}"
        subprocess.run([*CLI, "init", "--demo", str(folder), "--filler", filler], check=True, capture_output=True)
        folders.append(folder)
    return folders


def table(scenarios: List[Scenario]) -> str:
    rows = [("scenario", "engine", "folder", "target", "options", "port", "exit", "seconds", "waited", "label", "result")]
    for s in scenarios:
        for r in s.runs:
            rows.append((s.name, s.engine, Path(r.folder).name, r.target, " ".join(r.extra) or "(default port)",
                         r.port, str(r.rc), f"{r.seconds:.1f}", "yes" if r.waited else "no", r.label,
                         "ok" if r.ok else f"FAILED {r.problem}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for s in scenarios:
        ok = sum(r.ok for r in s.runs)
        lines.append(f"{s.name} / {s.engine}: {ok}/{len(s.runs)} ok, wall {s.seconds:.1f} s; "
                     f"left behind: {', '.join(s.leftovers) if s.leftovers else 'nothing'}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="docker,buildkit")
    parser.add_argument("--filler", default="64KiB")
    parser.add_argument("--cache", action="store_true", help="do not pass --no-cache to the builds")
    parser.add_argument("--keep", action="store_true", help="keep the folders and images")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ab-stress-"))
    scenarios: List[Scenario] = []
    tags: List[str] = []
    try:
        for engine in args.engines.split(","):
            one = make_folders(root, f"one-{engine}-", 1, args.filler)
            four = make_folders(root, f"four-{engine}-", 4, args.filler)
            for name, folders, targets in (("one folder", one, TARGETS_ONE), ("four folders", four, TARGETS_FOUR)):
                print(f"{name}, {engine}: {len(targets)} builds at once ...", flush=True)
                found = scenario(name, engine, folders, targets, not args.cache, root)
                scenarios.append(found)
                tags += [r.tag for r in found.runs]
        print()
        print(table(scenarios))
    finally:
        if not args.keep:
            if tags:
                subprocess.run([DOCKER, "image", "rm", *tags], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept: {root} and images {' '.join(tags)}")
    return 0 if all(r.ok for s in scenarios for r in s.runs) and not any(s.leftovers for s in scenarios) else 1


if __name__ == "__main__":
    sys.exit(main())
