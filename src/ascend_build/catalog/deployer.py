"""What ascend-build knows from ascend-deployer, Huawei's offline installer on the package index:
the sha256 it publishes for every file an image may hold (`downloader/software/*.json`; not the
host-side kinds: drivers, cluster and diagnosis tools), the driver (NPU) release each CANN release
requires (`required_soft`), and the release pairs of `downloader/version_match.json` (`<Kind>_<release>`
-> `CANN_<release>`, under the kind's name in lower case with `_` for `-`).

The package ships one copy (published.json, made from a wheel by scripts/published-checksums.py);
`ascend-build data update` writes a newer one into the user's data folder. The newer of the two
(by ascend-deployer version) is what every command reads."""
import contextlib
import datetime
import hashlib
import json
import os
import re
import zipfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from packaging.version import InvalidVersion, Version

from ..errors import PackageError
from .checksums import MetadataTooLarge

WHEEL = re.compile(r"ascend_deployer-(?P<version>[^-]+)-py3-none-any\.whl")
MANIFEST = re.compile(r"ascend_deployer/downloader/software/(?P<kind>[A-Za-z-]+)_(?P<version>[^/]+)\.json")
HOST_KINDS = ("NPU", "DL", "FaultDiag")        # installed on hosts, never in images: not "published" here
VERSION_MATCH = "ascend_deployer/downloader/version_match.json"
MAX_MEMBER = 4 << 20                   # one manifest: a few kB
MAX_WHEEL = 256 << 20                  # the wheel: under 1 MB today
FILE_NAME = "deployer.json"


def data_dir() -> Path:
    """The user's data folder (`$XDG_DATA_HOME/ascend-build`, else ~/.local/share/ascend-build)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "ascend-build"


def _entries(node) -> Iterator[dict]:
    """Every {filename, sha256} object of a manifest, at any depth."""
    if isinstance(node, dict):
        if {"filename", "sha256"} <= set(node):
            yield node
        for value in node.values():
            yield from _entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _entries(value)


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    if info.file_size > MAX_MEMBER:
        raise MetadataTooLarge(f"{info.filename} is larger than {MAX_MEMBER >> 20} MiB")
    return json.loads(zf.read(info).decode("utf-8"))


def _release(text: str) -> str:
    """`CANN_8.5.0` -> `8.5.0` (version_match.json names releases as manifests do)."""
    return str(text).split("_", 1)[-1]


def read_wheel(path: Path) -> dict:
    """The tables of one ascend-deployer wheel, with its provenance. PackageError when it is not
    one or cannot be read."""
    name = Path(path).name
    match = WHEEL.fullmatch(name)
    if not match:
        raise PackageError(f"{name} is not an ascend-deployer wheel (ascend_deployer-VERSION-py3-none-any.whl)",
                           fix="give the wheel downloaded from the package index, under its own name")
    try:
        version = str(Version(match["version"]))
        if os.stat(path).st_size > MAX_WHEEL:
            raise MetadataTooLarge(f"larger than {MAX_WHEEL >> 20} MiB")
        sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        files: Dict[str, dict] = {}
        drivers: Dict[str, str] = {}
        pairs: Dict[str, Dict[str, str]] = {}
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                found = MANIFEST.fullmatch(info.filename)
                if not found:
                    continue
                manifest = _member(zf, info)
                if found["kind"] == "CANN":
                    for soft in manifest.get("required_soft") or []:
                        if isinstance(soft, dict) and soft.get("name") == "NPU" and soft.get("version"):
                            drivers[found["version"]] = str(soft["version"])
                if found["kind"] in HOST_KINDS:
                    continue
                for entry in _entries(manifest):
                    row = {"sha256": str(entry["sha256"]).lower(), "url": str(entry.get("url", "")),
                           "manifest": Path(info.filename).stem}
                    old = files.setdefault(str(entry["filename"]), row)
                    if old["sha256"] != row["sha256"]:
                        raise PackageError(f"{name}: {entry['filename']} has two sha256 ({old['manifest']}, "
                                           f"{row['manifest']})", fix="use another ascend-deployer release")
            matches = _member(zf, zf.getinfo(VERSION_MATCH)) if VERSION_MATCH in zf.namelist() else {}
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, InvalidVersion, MetadataTooLarge) as exc:
        raise PackageError(f"cannot read {name}: {exc}", fix="download it again (`ascend-build data update`)") from None
    for what, cann in (matches.items() if isinstance(matches, dict) else ()):
        kind, _, release = str(what).partition("_")
        if release and isinstance(cann, str) and cann.startswith("CANN_"):
            pairs.setdefault(kind.lower().replace("-", "_"), {})[release] = _release(cann)
    if not files:
        raise PackageError(f"{name} holds no release manifests (downloader/software/*.json)",
                           fix="give an ascend-deployer wheel of a release that ships them")
    return {"source": f"ascend-deployer {version}", "version": version, "sha256": sha256,
            "date": datetime.date.today().isoformat(), "files": dict(sorted(files.items())),
            "cann_driver": dict(sorted(drivers.items())), "pairs": pairs}


def _read(path) -> Optional[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and isinstance(data.get("files"), dict) and isinstance(data.get("source"), str)
    return data if ok else None


def version_of(data: dict) -> Version:
    """The ascend-deployer release a table came from."""
    try:
        return Version(str(data.get("version") or data["source"].rsplit(" ", 1)[-1]))
    except (InvalidVersion, KeyError):
        return Version("0")


@lru_cache(maxsize=1)
def current() -> Tuple[dict, str]:
    """The tables to use and where they come from: the user's update when it is newer than the
    shipped copy, else the shipped copy."""
    shipped = _read(resources.files(__package__).joinpath("published.json"))
    assert shipped is not None, "the shipped published.json is part of the package"
    updated = _read(data_dir() / FILE_NAME)
    if updated is not None and version_of(updated) > version_of(shipped):
        return updated, f"{updated['source']} (updated {updated.get('date', '?')}, {data_dir() / FILE_NAME})"
    return shipped, f"{shipped['source']} (shipped with ascend-build)"


def install(data: dict) -> Path:
    """Write `data` as the user's tables (atomically); the path."""
    target = data_dir() / FILE_NAME
    tmp = target.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise PackageError(f"cannot write {target}: {exc.strerror or exc}",
                           fix="make the folder writable, or set XDG_DATA_HOME to one that is") from None
    current.cache_clear()
    return target
