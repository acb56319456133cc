"""sha256 and integrity verdict of each package, cached in `<workdir>/.ascend-build/hashes.json`
keyed on (relative path, size, mtime_ns): a second check of unchanged files reads no package
data. Writing that file (atomically) is the only write `check` makes in the working directory."""
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from .checksums import compare_expected, load_checksums
from .integrity import FileCheck, verify_file
from ..workdir import HASH_CACHE as CACHE_NAME
from ..workdir import STATE_DIR as CACHE_DIR
from .model import Package, Problem

CACHE_FORMAT = 2          # bump when the integrity checks change, so old verdicts are dropped


class HashCache:
    """The cache file's entries: rel path -> {size, mtime_ns, sha256, problems (None: not checked)}."""

    def __init__(self, workdir: Path, entries: Dict[str, dict]):
        self.workdir = Path(workdir)
        self.entries = entries
        self.changed = False

    @property
    def path(self) -> Path:
        return self.workdir / CACHE_DIR / CACHE_NAME

    @classmethod
    def load(cls, workdir: Path) -> "HashCache":
        cache = cls(workdir, {})
        try:
            data = json.loads(cache.path.read_text())
        except (OSError, ValueError):
            return cache
        if isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("files"), dict):
            cache.entries = data["files"]
        return cache

    def get(self, rel: str, st: os.stat_result) -> Optional[dict]:
        entry = self.entries.get(rel)
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            return entry
        return None

    def put(self, rel: str, st: os.stat_result, sha256: str, problems: Optional[List[Problem]]) -> None:
        old = self.get(rel, st)
        if problems is None and old and old.get("sha256") == sha256:
            problems = _problems(old)        # keep an earlier verdict of the same content
        self.entries[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256,
                             "problems": None if problems is None else [asdict(p) for p in problems]}
        self.changed = True

    def save(self) -> None:
        """Write atomically (temp file + rename), dropping entries of files that are gone."""
        if not self.changed:
            return
        files = {rel: e for rel, e in self.entries.items() if (self.workdir / rel).is_file()}
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".hashes.", suffix=".tmp")
            os.chmod(tmp, 0o644)
            with os.fdopen(fd, "w") as f:
                json.dump({"format": CACHE_FORMAT, "files": files}, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass                              # a read-only working directory: no cache, same results
        self.changed = False


def _problems(entry: dict) -> Optional[List[Problem]]:
    raw = entry.get("problems")
    return None if raw is None else [Problem(**p) for p in raw]


def _folder_prefix(rel: str) -> str:
    return rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""


def _check(pkg: Package, expected: Optional[Tuple[str, str]]) -> Tuple[FileCheck, Optional[os.stat_result]]:
    result = verify_file(pkg.path, pkg.file, pkg.format, expected)
    try:
        return result, os.stat(pkg.path)
    except OSError:
        return result, None


def verify_packages(workdir: Path, packages: List[Package], workers: Optional[int] = None
                    ) -> Tuple[List[Package], List[Problem]]:
    """sha256 + integrity of `packages` (cache first, then the files in parallel threads).
    Returns the packages with `sha256` and `size` filled, and the problems found."""
    cache = HashCache.load(workdir)
    tables: Dict[str, Dict[str, Tuple[str, str]]] = {}
    known: Dict[str, Tuple[Optional[str], List[Problem], int]] = {}
    todo: List[Tuple[Package, Optional[Tuple[str, str]], os.stat_result]] = []
    expected_of: Dict[str, Optional[Tuple[str, str]]] = {}
    for pkg in packages:
        prefix = _folder_prefix(pkg.file)
        if prefix not in tables:
            tables[prefix] = load_checksums(pkg.path.parent, prefix)
        expected = expected_of[pkg.file] = tables[prefix].get(pkg.path.name)
        try:
            st = os.stat(pkg.path)
        except OSError:
            todo.append((pkg, expected, None))
            continue
        entry = cache.get(pkg.file, st)
        if entry and (expected is not None or entry.get("problems") is not None):
            known[pkg.file] = (entry["sha256"], [] if expected else _problems(entry), st.st_size)
        else:
            todo.append((pkg, expected, st))
    n = workers or min(len(todo), os.cpu_count() or 1, 4)
    with ThreadPoolExecutor(max(n, 1)) as pool:
        results = list(pool.map(lambda item: _check(item[0], item[1]), todo))
    for (pkg, expected, before), (result, after) in zip(todo, results):
        known[pkg.file] = (result.sha256, result.problems, after.st_size if after else 0)
        unchanged = before is not None and after is not None and (before.st_size, before.st_mtime_ns) == (
            after.st_size, after.st_mtime_ns)
        if result.sha256 and unchanged:
            cache.put(pkg.file, after, result.sha256, None if expected else result.problems)
    cache.save()
    updated, problems = [], []
    for pkg in packages:
        sha256, found, size = known[pkg.file]
        problems += found + compare_expected(pkg.file, sha256, expected_of[pkg.file])
        updated.append(replace(pkg, sha256=sha256, size=size or pkg.size))
    return updated, problems
