"""Hashing speed of `check`: ours vs coreutils `sha256sum`, same files, same run; warm `check` time.

1. Plain sha256 (the bar: >= 0.9x sha256sum): 4 files of incompressible bytes (2 GiB in all)
   hashed one after the other by `integrity.hash_file` and by `sha256sum f1 f2 f3 f4`. The page
   cache cannot be dropped without root tricks, so both read from it: the files are read once with
   `cat >/dev/null` first, then the runs alternate; the median of --runs is reported.
2. Integrity + sha256 in one pass (what a cold `check` does per file): a stand-in toolkit `.run`
   (whole-file sha256 + payload sha256) and a torch wheel (sha256 + every member's CRC and RECORD
   hash), against `sha256sum` of the same files.
3. Cold check (all selected files, in parallel threads) and warm check (hash cache, nothing read)
   of a full stand-in set, in ms; plus a warm `ascend-build check --json` end to end.

    .venv/bin/python benchmarks/bench_hash.py [--total-mib 2048] [--runs 5] [--package-mib 256]

Run by hand (not collected by pytest). Everything lives in a temporary folder removed at the end.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

from common import need, ratio_spread, spread
from ascend_build.catalog import check
from ascend_build.catalog.hashcache import CACHE_DIR
from ascend_build.catalog.integrity import check_run, check_wheel, hash_file
from ascend_build.components.registry import components
from ascend_build.demo import standins
from ascend_build.spec import BuildSpec

MIB = 1 << 20


def write_random(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        for _ in range(size // (64 * MIB)):
            f.write(os.urandom(64 * MIB))
        f.write(os.urandom(size % (64 * MIB)))
    return path


def warm(paths: List[Path]) -> None:
    subprocess.run(["sh", "-c", 'cat "$@" >/dev/null', "cat", *map(str, paths)], check=True)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sha256sum(paths: List[Path]) -> None:
    subprocess.run(["sha256sum", *map(str, paths)], check=True, stdout=subprocess.DEVNULL)


def compare(label: str, paths: List[Path], ours: Callable[[], object], runs: int) -> float:
    """Alternate ours / sha256sum, print the MB/s of each (min/median/max) and the ratio."""
    total = sum(p.stat().st_size for p in paths)
    warm(paths)
    mine, theirs = [], []
    for _ in range(runs):
        mine.append(timed(ours))
        theirs.append(timed(lambda: sha256sum(paths)))
    ours_rate, their_rate = [total / t / 1e6 for t in mine], [total / t / 1e6 for t in theirs]
    print(f"{label:<44} MB/s ours {spread(ours_rate, '{:.0f}')}   sha256sum {spread(their_rate, '{:.0f}')}   "
          f"ratio {ratio_spread(ours_rate, their_rate)}")
    return statistics.median(ours_rate) / statistics.median(their_rate)


def warm_check_ms(work: Path, runs: int) -> None:
    spec = BuildSpec()
    shutil.rmtree(work / CACHE_DIR, ignore_errors=True)
    chain = ("base", "cann", "pta", "mindie")
    cold = timed(lambda: check(work, spec, components(), chain, "mindie", "x86_64"))
    times = [timed(lambda: check(work, spec, components(), chain, "mindie", "x86_64")) for _ in range(max(runs, 5))]
    cli = Path(sys.executable).with_name("ascend-build")
    command = [str(cli), "check", "-C", str(work), "--json", "--platform", "x86_64"]
    cli_times = [timed(lambda: subprocess.run(command, stdout=subprocess.DEVNULL, check=True)) for _ in range(runs)]
    size = sum(p.stat().st_size for p in (work / "packages").iterdir()) / MIB
    ms = [t * 1000 for t in times]
    print(f"full stand-in set ({size:.0f} MiB): cold check {cold * 1000:.0f} ms, warm check "
          f"{spread(ms, '{:.1f}')} ms (min/median/max of {len(times)}), warm `ascend-build check --json` "
          f"{spread([t * 1000 for t in cli_times], '{:.0f}')} ms (process start included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--package-mib", type=int, default=200,
                        help="filler of the stand-in packages of part 2/3 (the generator allows < 256)")
    args = parser.parse_args()
    if not need("sha256sum", "coreutils"):
        sys.exit("sha256sum not found: install coreutils")
    with tempfile.TemporaryDirectory(prefix="bench-hash-") as tmp:
        root = Path(tmp)
        files = [write_random(root / f"file{i}.bin", args.total_mib * MIB // 4) for i in range(4)]
        print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.total_mib} MiB in 4 files, "
              f"median of {args.runs} alternating runs, page cache warm for both")
        ratio = compare("sha256, files one after the other", files, lambda: [hash_file(p) for p in files], args.runs)
        for path in files:
            path.unlink()
        work = root / "work"
        paths = standins.generate(work / "packages", cann="8.5.0", arch="x86_64", fill=args.package_mib * MIB)
        run, wheel = paths[0], paths[3]
        compare(f"toolkit .run: sha256 + payload SHA ({run.stat().st_size // MIB} MiB)", [run],
                lambda: check_run(run, run.name), args.runs)
        compare(f"torch wheel: sha256 + CRC + RECORD ({wheel.stat().st_size // MIB} MiB)", [wheel],
                lambda: check_wheel(wheel, wheel.name), args.runs)
        warm_check_ms(work, args.runs)
        print(f"bar (plain sha256 >= 0.9x sha256sum): {'PASS' if ratio >= 0.9 else 'FAIL'} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
