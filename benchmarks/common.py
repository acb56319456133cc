"""What the benchmarks share: the spread of a series of runs, and the tools they need."""
import os
import shutil
import statistics
import subprocess
from typing import Optional, Sequence


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """min/median/max of the runs, e.g. "0.41/0.44/0.52"."""
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def ratio_spread(ours: Sequence[float], theirs: Sequence[float]) -> str:
    """The ratio of the medians, and the spread of the per-run ratios (runs paired in order)."""
    ratios = [a / b for a, b in zip(ours, theirs)]
    return f"{statistics.median(ours) / statistics.median(theirs):.2f} (per run min/median/max {spread(ratios)})"


def need(tool: str, package: str, path: Optional[str] = None) -> Optional[str]:
    """The tool's path; when missing, installed with apt-get as root, else None (the caller skips
    what needs it and says so)."""
    found = path if path and os.access(path, os.X_OK) else shutil.which(tool)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {package} (apt-get) for {tool}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                       env=env, check=False, stdout=subprocess.DEVNULL)
        found = path if path and os.access(path, os.X_OK) else shutil.which(tool)
    return found
