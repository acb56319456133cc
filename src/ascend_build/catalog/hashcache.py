"""sha256 and integrity verdict of each package, cached in `<workdir>/.ascend-build/hashes.json`
keyed, as git's index is, on (relative path, size, mtime_ns, ctime_ns, inode): a second check of
unchanged files reads no package data, and a file changed in place with its old mtime restored
(`touch -r`) still has a new ctime. `--rehash` (`forget`) drops the cache. Writing that file
and facts.json (factcache.py), atomically, are the only writes `check` makes in the working
directory."""
import json
import os
import re
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import ConfigError
from ..workdir import HASH_CACHE as CACHE_NAME
from ..workdir import STATE_DIR as CACHE_DIR
from .checksums import compare_expected, load_checksums
from .integrity import FileCheck, verify_file
from .model import Package, Problem
from .problems import RUN_UNVERIFIED

CACHE_FORMAT = 3          # bump when the integrity checks or the key change, so old verdicts are dropped
MAX_CACHE_BYTES = 64 << 20
KEY = ("size", "mtime_ns", "ctime_ns", "ino")
FACTS_NAME = "facts.json"    # factcache.py: what check reads inside the packages, keyed the same way
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PROBLEM_FIELDS = {"level", "code", "message", "file", "fix"}


def _key(st: os.stat_result) -> Dict[str, int]:
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "ino": st.st_ino}


def _valid(entry) -> bool:
    """An entry of the current shape; anything else in the file is ignored (and rewritten)."""
    if not isinstance(entry, dict) or not all(type(entry.get(k)) is int for k in KEY):
        return False
    if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
        return False
    problems = entry.get("problems")
    return problems is None or (isinstance(problems, list) and all(
        isinstance(p, dict) and set(p) == _PROBLEM_FIELDS and all(v is None or isinstance(v, str) for v in p.values())
        for p in problems))


def cache_path(workdir: Path) -> Path:
    return Path(workdir) / CACHE_DIR / CACHE_NAME


def forget(workdir: Path) -> None:
    """`--rehash`: remove the cache (and what check read inside the packages, facts.json), so the
    next check reads every package again."""
    for path in (cache_path(workdir), cache_path(workdir).with_name(FACTS_NAME)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ConfigError(f"--rehash cannot remove {path}: {exc.strerror or exc}",
                              fix=f"make {path.parent} writable, or remove it by hand") from None


class HashCache:
    """The cache file's entries: rel path -> {size, mtime_ns, ctime_ns, ino, sha256, problems
    (None: not checked)}."""

    def __init__(self, workdir: Path, entries: Dict[str, dict]):
        self.workdir = Path(workdir)
        self.entries = entries
        self.changed = False

    @property
    def path(self) -> Path:
        return cache_path(self.workdir)

    @classmethod
    def load(cls, workdir: Path) -> "HashCache":
        cache = cls(workdir, {})
        try:
            with open(cache.path, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    return cache
                data = json.loads(f.read(MAX_CACHE_BYTES + 1))
        except (OSError, ValueError, RecursionError):
            return cache
        if isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("files"), dict):
            cache.entries = {rel: e for rel, e in data["files"].items() if _valid(e)}
        return cache

    def get(self, rel: str, st: os.stat_result) -> Optional[dict]:
        entry = self.entries.get(rel)
        if entry and all(entry[k] == v for k, v in _key(st).items()):
            return entry
        return None

    def put(self, rel: str, st: os.stat_result, sha256: str, problems: Optional[List[Problem]]) -> None:
        old = self.get(rel, st)
        if problems is None and old and old.get("sha256") == sha256:
            problems = _problems(old)        # keep an earlier verdict of the same content
        self.entries[rel] = {**_key(st), "sha256": sha256,
                             "problems": None if problems is None else [asdict(p) for p in problems]}
        self.changed = True

    def save(self) -> List[Problem]:
        """Write atomically (temp file + rename), dropping entries of files that are gone. A
        working directory that cannot be written is fine (no cache, same results); a cache
        folder that is in the way is a warning."""
        if not self.changed:
            return []
        files = {rel: e for rel, e in self.entries.items() if (self.workdir / rel).is_file()}
        folder = self.path.parent
        try:
            folder.mkdir(exist_ok=True)
        except FileExistsError:
            return [self._unwritable(f"{CACHE_DIR} is a file, not a folder")]
        except OSError:
            return []                          # a read-only working directory
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".hashes.", suffix=".tmp")
            os.chmod(tmp, 0o644)
            with os.fdopen(fd, "w") as f:
                json.dump({"format": CACHE_FORMAT, "files": files}, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            return [self._unwritable(f"cannot write {CACHE_DIR}/{CACHE_NAME}: {exc.strerror or exc}")]
        finally:
            _remove(tmp)                       # a disk that filled up half-way leaves no temporary file
        self.changed = False
        return []

    def _unwritable(self, why: str) -> Problem:
        return Problem(level="warning", code="hash-cache-unwritable", file=CACHE_DIR,
                       message=f"{why}: every check reads all packages again",
                       fix=f"remove {self.workdir / CACHE_DIR} or make it a writable folder")


def _remove(tmp: Optional[str]) -> None:
    if tmp:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _problems(entry: dict) -> Optional[List[Problem]]:
    raw = entry.get("problems")
    return None if raw is None else [Problem(**p) for p in raw]


def vouched(found: List[Problem], sha256: Optional[str], expected: Optional[Tuple[str, str]]) -> List[Problem]:
    """The problems of a file whose checksum file lists its sha256: the listing says which file it
    is (a `.run` without SHA/MD5 in its header is no longer unverified), never that it is whole,
    so every structural problem stays."""
    if expected is None or sha256 != expected[0]:
        return found
    return [p for p in found if p.code != RUN_UNVERIFIED]


def _folder_prefix(rel: str) -> str:
    return rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""


def _check(pkg: Package) -> Tuple[FileCheck, Optional[os.stat_result]]:
    result = verify_file(pkg.path, pkg.file, pkg.format)
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
    todo: List[Tuple[Package, Optional[os.stat_result]]] = []
    expected_of: Dict[str, Optional[Tuple[str, str]]] = {}
    listing: List[Problem] = []
    for pkg in packages:
        prefix = _folder_prefix(pkg.file)
        if prefix not in tables:
            tables[prefix], found = load_checksums(Path(workdir) / prefix, prefix)
            listing += found
        expected_of[pkg.file] = tables[prefix].get(pkg.name)
        try:
            st = os.stat(pkg.path)
        except OSError:
            todo.append((pkg, None))
            continue
        entry = cache.get(pkg.file, st)
        if entry and entry.get("problems") is not None:
            known[pkg.file] = (entry["sha256"], _problems(entry), st.st_size)
        else:
            todo.append((pkg, st))
    n = workers or min(len(todo), os.cpu_count() or 1, 4)
    with ThreadPoolExecutor(max(n, 1)) as pool:
        results = list(pool.map(lambda item: _check(item[0]), todo))
    for (pkg, before), (result, after) in zip(todo, results):
        known[pkg.file] = (result.sha256, result.problems, after.st_size if after else 0)
        unchanged = before is not None and after is not None and _key(before) == _key(after)
        if result.sha256 and unchanged:
            cache.put(pkg.file, after, result.sha256, result.problems)
    updated, problems = [], listing + cache.save()
    for pkg in packages:
        sha256, found, size = known[pkg.file]
        problems += vouched(found, sha256, expected_of[pkg.file]) + compare_expected(pkg.file, sha256,
                                                                                    expected_of[pkg.file])
        updated.append(replace(pkg, sha256=sha256, size=size or pkg.size))
    return updated, problems
