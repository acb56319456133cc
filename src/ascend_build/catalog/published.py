"""The sha256 Huawei publishes for its official files (deployer.py: from the manifests of
Huawei's offline installer, shipped or updated)."""
from dataclasses import dataclass
from typing import Collection, Dict, List, Optional

from .deployer import current
from .model import Package, Problem
from .problems import PUBLISHED_MISMATCH

PUBLISHED = "published"
NOT_PUBLISHED = "not a published build"


@dataclass(frozen=True)
class Published:
    sha256: str
    url: str
    manifest: str


def load() -> dict:
    return current()[0]


def source() -> str:
    """Where the data comes from, e.g. `ascend-deployer 26.0.0`."""
    return load()["source"]


def files() -> Dict[str, Published]:
    return {name: Published(**row) for name, row in load()["files"].items()}


def lookup(name: str) -> Optional[Published]:
    row = load()["files"].get(name)
    return Published(**row) if row else None


def status(pkg: Package) -> Optional[str]:
    """`published` when Huawei publishes the file's name with its bytes' sha256, `not a published
    build` otherwise; None while the sha256 is unknown (a file not read)."""
    pkg = pkg.source or pkg                  # a package from a signed zip: the zip is what Huawei publishes
    if not pkg.sha256:
        return None
    known = lookup(pkg.name)
    return PUBLISHED if known and known.sha256 == pkg.sha256 else NOT_PUBLISHED


def problems(packages: List[Package], vouched: Collection[str] = ()) -> List[Problem]:
    """An error for each file whose name Huawei publishes with other bytes, unless the user's
    checksum file lists it (`vouched`: their files, e.g. a local rebuild)."""
    found = []
    for pkg in packages:
        known = lookup(pkg.name)
        if pkg.sha256 and known and known.sha256 != pkg.sha256 and pkg.file not in vouched:
            found.append(Problem(
                level="error", code=PUBLISHED_MISMATCH, file=pkg.file,
                message=f"{pkg.file}: Huawei publishes this name with sha256 {known.sha256} ({source()}, "
                        f"{known.manifest}); this file's is {pkg.sha256}",
                fix=f"download it again from {known.url}; for a build of your own, list its sha256 in "
                    f"SHA256SUMS or {pkg.name}.sha256 next to it"))
    return found
