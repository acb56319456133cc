"""`ascend-build data update`: the newest ascend-deployer from the package index (or a wheel given
by path, for offline sites) turned into the user's tables (catalog/deployer.py). The wheel is
downloaded as `fetch` downloads (the index's sha256 checked before it is read) into a temporary
folder beside the data, and the data is replaced only once the new tables are whole: a broken
download or wheel keeps the old data."""
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..catalog import deployer
from ..catalog.compat import load_deps
from ..errors import PackageError
from ..platforms import Target, host_arch
from .download import Progress, download
from .resolve import Indexes, Wheel, resolve

PROJECT = "ascend-deployer"


@dataclass(frozen=True)
class Updated:
    data: dict
    path: Optional[Path]          # where it was written; None: not newer than the data in use
    before: str                   # the data in use before


def _adopt(data: dict) -> Updated:
    before, where = deployer.current()
    if deployer.version_of(data) <= deployer.version_of(before):
        return Updated(data, None, where)
    return Updated(data, deployer.install(data), where)


def from_wheel(path: Path) -> Updated:
    return _adopt(deployer.read_wheel(path))


def from_index(index_url: Optional[str], on_wheel: Callable[[Wheel], Progress] = lambda w: (lambda d, t: None)) -> Updated:
    """The newest ascend-deployer of `index_url` (default: fetch's index)."""
    url = index_url or str(load_deps()["index_url"])
    target = Target(python="3.11", arch=host_arch() or "x86_64")      # a py3-none-any wheel: any target
    try:
        wheels = [w for w in resolve([PROJECT], target, Indexes(url)) if w.name == PROJECT]
    except PackageError as exc:
        raise PackageError(f"cannot take {PROJECT} from {url}: {exc.message}; the data in use is kept",
                           fix="name an index that mirrors it: --index-url URL, or give a downloaded wheel: "
                               "--wheel PATH") from None
    if not wheels:
        raise PackageError(f"{url} has no {PROJECT} wheel", fix="name an index that mirrors it: --index-url URL, "
                                                                "or give a downloaded wheel: --wheel PATH")
    folder = deployer.data_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PackageError(f"cannot write {folder}: {exc.strerror or exc}",
                           fix="make it writable, or set XDG_DATA_HOME to a folder that is") from None
    with tempfile.TemporaryDirectory(prefix=".update-", dir=folder) as tmp:
        return from_wheel(download(wheels[0], Path(tmp), on_wheel(wheels[0])))
