"""Scan a working directory: its top level and one `packages/` folder, names only (no file is
opened here)."""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, List

from ..spec import CONFIG_NAME
from .model import Package
from .naming import identify

PACKAGES_DIR = "packages"
CHECKSUM_NAMES = ("SHA256SUMS", "sha256sums.txt", "SHA256SUMS.txt")
PACKAGE_SUFFIXES = (".run", ".whl", ".tar.gz", ".tgz", ".zip", ".tar")


@dataclass
class Catalog:
    """Every identified package file, and the files no pattern fits."""

    packages: List[Package] = field(default_factory=list)
    unrecognised: List[str] = field(default_factory=list)   # relative paths


def is_project_file(name: str) -> bool:
    """Files of the working directory that are not packages and not worth listing."""
    lower = name.lower()
    return (name.startswith(".") or name == CONFIG_NAME or lower.startswith("readme")
            or name in CHECKSUM_NAMES or lower.endswith(".sha256"))


def looks_like_package(name: str) -> bool:
    return name.lower().endswith(PACKAGE_SUFFIXES)


def _files(folder: Path) -> Iterable[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if e.is_file()), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def scan(workdir: Path) -> Catalog:
    """Identify the files at the top of `workdir` and in `workdir/packages/` (not deeper)."""
    workdir = Path(workdir).resolve()
    catalog = Catalog()
    for folder, prefix in ((workdir, ""), (workdir / PACKAGES_DIR, PACKAGES_DIR + "/")):
        for entry in _files(folder):
            rel = prefix + entry.name
            if is_project_file(entry.name):
                continue
            found = identify(entry.name)
            if found is None:
                catalog.unrecognised.append(rel)
                continue
            catalog.packages.append(Package(
                path=Path(entry.path), file=rel, component=found.component, slot=found.slot,
                version=found.version, format=found.format, arch=found.arch, chip=found.chip,
                python=found.python, torch=found.torch, abi=found.abi, prerelease=found.prerelease,
                size=entry.stat().st_size,
            ))
    return catalog
