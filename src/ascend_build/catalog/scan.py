"""Scan a working directory: its top level and one `packages/` folder, names only (no file is
opened here).

One symlink policy for every command: a link is followed when it resolves to a regular file,
wherever that is (packages kept in a shared store are common); the package's `path` is then the
resolved target, so its bytes are what gets checked, served, exported and baked, while `file`
keeps the name in the working directory. Links to anything else (a device, a FIFO, a folder),
broken links and link loops are refused (`follow`), as are names that are not safe file names."""
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import PackageError
from ..grammar import FILE_NAME_RULE
from ..spec import CONFIG_NAME, working_dir
from .model import Package, Problem
from .naming import identify, is_safe_name

PACKAGES_DIR = "packages"
CHECKSUM_NAMES = ("SHA256SUMS", "sha256sums.txt", "SHA256SUMS.txt")
PACKAGE_SUFFIXES = (".run", ".whl", ".tar.gz", ".tgz", ".zip", ".tar")


@dataclass
class Catalog:
    """Every identified package file, the files no pattern fits, and the files refused."""

    packages: List[Package] = field(default_factory=list)
    unrecognised: List[str] = field(default_factory=list)   # relative paths
    problems: List[Problem] = field(default_factory=list)   # unsafe names, links to non-regular files


def is_project_file(name: str) -> bool:
    """Files of the working directory that are not packages and not worth listing."""
    lower = name.lower()
    return (name.startswith(".") or name == CONFIG_NAME or lower.startswith("readme")
            or name in CHECKSUM_NAMES or lower.endswith((".sha256", ".pem")))


def looks_like_package(name: str) -> bool:
    return name.lower().endswith(PACKAGE_SUFFIXES)


def follow(path: Path, rel: str) -> Tuple[Path, os.stat_result]:
    """The regular file `path` is, or resolves to through links, with its stat; PackageError naming
    `rel` for a link loop, a broken link or a device, FIFO, socket or folder."""
    fix = "replace it with the package file itself, or a link to one"
    try:
        target = Path(path).resolve(strict=True) if os.path.islink(path) else Path(path)
        st = os.stat(target)
    except RuntimeError:                              # Python < 3.13 signals a link loop this way
        raise PackageError(f"{rel} is a symlink loop", fix=fix) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PackageError(f"{rel} is a symlink loop", fix=fix) from None
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise PackageError(f"{rel} is a broken symlink: {os.readlink(path)} does not exist", fix=fix) from None
        raise PackageError(f"{rel} cannot be read: {exc.strerror or exc}", fix="check its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, FIFO or socket)"
        via = f" (a symlink to {target})" if target != Path(path) else ""
        raise PackageError(f"{rel}{via} is {what}", fix=fix)
    return target, st


def _entries(folder: Path, rel: str) -> List[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise PackageError(f"{rel} is not a folder", fix=f"the packages go into a folder named {PACKAGES_DIR}/: "
                           "rename or remove that file") from None
    except OSError as exc:
        raise PackageError(f"cannot list {rel}: {exc.strerror or exc}", fix=f"make {rel} readable (chmod u+rx)") from None


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:                                   # a link loop
        return False


def scan(workdir: Path, patterns: Tuple[Tuple[str, str, Optional[str], str], ...] = ()) -> Catalog:
    """Identify the files at the top of `workdir` and in `workdir/packages/` (not deeper), by the
    built-in grammar and the components' `patterns` (model.file_patterns)."""
    workdir = working_dir(workdir).resolve()
    catalog = Catalog()
    for folder, prefix in ((workdir, ""), (workdir / PACKAGES_DIR, PACKAGES_DIR + "/")):
        for entry in _entries(folder, prefix or str(workdir)):
            rel = prefix + entry.name
            if is_project_file(entry.name) or entry.is_dir(follow_symlinks=False):
                continue
            found = identify(entry.name, patterns)
            if found is None and not looks_like_package(entry.name):
                if _is_file(entry):
                    catalog.unrecognised.append(rel)
                continue
            if not is_safe_name(entry.name):
                catalog.problems.append(Problem(level="error", code="unsafe-file-name", file=rel, message=f"{rel!r}: "
                                                f"a package name may hold {FILE_NAME_RULE}",
                                                fix="rename it to the vendor's original file name"))
                continue
            try:
                path, st = follow(Path(entry.path), rel)
            except PackageError as err:
                catalog.problems.append(Problem(level="error", code="not-a-regular-file", file=rel,
                                                message=err.message, fix=err.fix))
                continue
            if found is None:
                catalog.unrecognised.append(rel)
                continue
            catalog.packages.append(Package(
                path=path, file=rel, component=found.component, slot=found.slot,
                version=found.version, format=found.format, arch=found.arch, chip=found.chip,
                python=found.python, torch=found.torch, abi=found.abi, prerelease=found.prerelease,
                size=st.st_size,
            ))
    return catalog
