"""What `check` reads inside package files besides their bytes' hash (a wheel's METADATA, the
torch wheel's C++ ABI, a requirements file's text), cached in `<workdir>/.ascend-build/facts.json`
keyed as the hash cache is (path, size, mtime_ns, ctime_ns, inode): a second check of unchanged
files opens none of them. A cache that cannot be read or written is no cache (same results)."""
import json
import os
import stat
import tempfile
from pathlib import Path
from dataclasses import replace
from typing import Callable, Dict, List, TypeVar

from ..workdir import STATE_DIR
from .hashcache import FACTS_NAME as CACHE_NAME
from .hashcache import KEY, MAX_CACHE_BYTES, _key, _remove
from .model import Package
from .wheelmeta import binary_arch

CACHE_FORMAT = 1
T = TypeVar("T")


class FactCache:
    def __init__(self, workdir: Path):
        self.path = Path(workdir) / STATE_DIR / CACHE_NAME
        self.entries: Dict[str, dict] = {}
        self.changed = False
        try:
            with open(self.path, "rb") as f:
                if stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    data = json.loads(f.read(MAX_CACHE_BYTES + 1))
                    if isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("files"), dict):
                        self.entries = {k: v for k, v in data["files"].items() if isinstance(v, dict)}
        except (OSError, ValueError, RecursionError):
            pass

    def get(self, pkg: Package, kind: str, read: Callable[[Path], T], to_json: Callable[[T], object] = lambda v: v,
            from_json: Callable[[object], T] = lambda v: v) -> T:
        """The fact `kind` of `pkg`: from the cache while the file is unchanged, else `read`."""
        try:
            key = _key(os.stat(pkg.path))
        except OSError:
            return read(pkg.path)
        entry = self.entries.get(pkg.file)
        if entry and all(entry.get(k) == key[k] for k in KEY) and kind in entry:
            try:
                return from_json(entry[kind])
            except (TypeError, ValueError, KeyError):
                pass
        value = read(pkg.path)
        if not entry or any(entry.get(k) != key[k] for k in KEY):
            entry = dict(key)
        entry[kind] = to_json(value)
        self.entries[pkg.file] = entry
        self.changed = True
        return value

    def save(self) -> None:
        """Write atomically, dropping entries of files that are gone; a working directory that
        cannot be written keeps no cache."""
        if not self.changed:
            return
        workdir = self.path.parent.parent
        files = {rel: e for rel, e in self.entries.items() if (workdir / rel).is_file()}
        tmp = None
        try:
            self.path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".facts.", suffix=".tmp")
            os.chmod(tmp, 0o644)
            with os.fdopen(fd, "w") as f:
                json.dump({"format": CACHE_FORMAT, "files": files}, f, sort_keys=True)
            os.replace(tmp, self.path)
            tmp = None
        except OSError:
            return
        finally:
            _remove(tmp)                       # a disk that filled up half-way leaves no temporary file
        self.changed = False


def with_binary_arches(packages: List[Package], facts: "FactCache") -> List[Package]:
    """`packages`, each wheel tagged for any arch given the arch of the extension modules it holds
    (wheelmeta.binary_arch), so that selection treats it as the arch it really is."""
    found = []
    for pkg in packages:
        arch = facts.get(pkg, "binary_arch", binary_arch) if pkg.format == "wheel" and pkg.arch is None else None
        found.append(replace(pkg, arch=arch) if arch else pkg)
    return found
