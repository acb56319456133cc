"""Resolve for the target, not for this host: uv's cross-platform resolution (`uv pip compile
--python-platform <arch>-manylinux_2_NN --python-version X.Y`) writes a PEP 751 lock with each
package's wheels for that platform, their URLs and sha256; each package's wheel is then the one
whose tags fit the target best (packaging.tags)."""
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from .. import grammar
from ..platforms import Target
from ..errors import PackageError

if sys.version_info >= (3, 11):
    import tomllib
else:                                     # pragma: no cover - Python < 3.11
    import tomli as tomllib

NO_WHEEL = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+) has no usable wheels")
UNREACHABLE = ("error sending request", "dns error", "Connect", "connection refused", "timed out", "Failed to fetch")


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel to download: where from, its file name and its sha256."""

    name: str
    version: str
    url: str
    filename: str
    sha256: str
    size: Optional[int] = None


@dataclass(frozen=True)
class Indexes:
    index_url: str
    torch_index_url: Optional[str] = None
    extra_index_urls: Tuple[str, ...] = ()       # e.g. Huawei's, for what the public index lacks
    find_links: Tuple[str, ...] = ()             # the folder's directories of wheels (a stand-in triton-ascend)


def uv_binary() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def compile_command(target: Target, indexes: Indexes, source: Path, overrides: Optional[Path] = None) -> List[str]:
    cmd = [uv_binary(), "pip", "compile", "--no-config", "--no-python-downloads", "--quiet", "--no-header", "--no-annotate",
           "--only-binary", ":all:", "--generate-hashes", "--format", "pylock.toml",
           "--python-platform", target.uv_platform, "--python-version", target.python,
           "--index-url", indexes.index_url]
    if indexes.torch_index_url and indexes.torch_index_url != indexes.index_url:
        # The PyTorch index mirrors a few PyPI packages at a few versions: the best version across
        # both indexes, not the first index that has the name (which would lock numpy to the mirror).
        cmd += ["--extra-index-url", indexes.torch_index_url]
    for url in indexes.extra_index_urls:
        cmd += ["--extra-index-url", url]
    for folder in indexes.find_links:
        cmd += ["--find-links", folder]
    if len(cmd) > cmd.index("--index-url") + 2:
        cmd += ["--index-strategy", "unsafe-best-match"]
    return cmd + (["--override", str(overrides)] if overrides else []) + [str(source)]


class NoWheel(PackageError):
    """A release the resolution needs has no wheel at all (only its sdist): `pinned` (name, version)."""

    def __init__(self, message: str, fix: str, pinned: List[Tuple[str, str]]):
        super().__init__(message, fix)
        self.pinned = pinned


class IndexUnreachable(PackageError):
    """uv could not reach an index; `url`: the index it names (None when it names none of ours)."""

    def __init__(self, message: str, fix: str, url: Optional[str]):
        super().__init__(message, fix)
        self.url = url


def _uv_error(stderr: str, target: Target, indexes: Indexes) -> PackageError:
    lines = [line.strip() for line in stderr.split("error:", 1)[-1].splitlines() if line.strip()]
    detail = "; ".join(line.replace("cause: ", "") for line in lines[:6]) or "uv failed"
    if any(word in detail for word in UNREACHABLE):
        ours = [u for u in (indexes.torch_index_url, indexes.index_url) if u]
        named = next((u for u in ours if u.rstrip("/") in detail), None)
        return IndexUnreachable(f"cannot reach the package index {named or ' or '.join(ours)}: {detail}",
                                "check the network and proxy (HTTPS_PROXY), or name a reachable mirror with "
                                f"{'--torch-index-url' if named and named == indexes.torch_index_url else '--index-url'}",
                                named)
    message = f"cannot resolve the Python packages for {target.arch} / Python {target.python}: {detail}"
    fix = "pick versions that have wheels for this target (fetch's release options, --python, requirements*.txt)"
    pinned = [(str(canonicalize_name(n)), v.rstrip(".,")) for n, v in NO_WHEEL.findall(detail)]
    return NoWheel(message, fix, pinned) if pinned else PackageError(message, fix)


def resolve(requirements: Sequence[str], target: Target, indexes: Indexes, left_out: Sequence[str] = ()) -> List[Wheel]:
    """The wheels of every package the requirements need on `target` (local wheels left out, and
    the distributions named in `left_out`: the resolution takes them as given)."""
    if not requirements:
        return []
    with tempfile.TemporaryDirectory(prefix="ascend-build-fetch-") as tmp:
        source, overrides = Path(tmp) / "requirements.in", Path(tmp) / "overrides.txt"
        source.write_text("".join(f"{line}\n" for line in requirements), encoding="utf-8")
        overrides.write_text("".join(f"{name} ; sys_platform == 'never'\n" for name in left_out), encoding="utf-8")
        try:
            done = subprocess.run(compile_command(target, indexes, source, overrides if left_out else None),
                                  capture_output=True, text=True,
                                  cwd=tmp, env={**os.environ, "UV_NO_PROGRESS": "1"}, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PackageError(f"cannot run uv: {exc}", fix="reinstall ascend-build (it brings uv)") from None
    if done.returncode != 0:
        raise _uv_error(done.stderr, target, indexes)
    try:
        lock = tomllib.loads(done.stdout)
    except tomllib.TOMLDecodeError as exc:
        raise PackageError(f"uv wrote a lock that cannot be read: {exc}", fix="update uv (pip install -U uv)") from None
    return [w for w in (pick(p, target) for p in lock.get("packages", [])) if w]


def _filename(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])


def pick(package: Dict, target: Target) -> Optional[Wheel]:
    """The wheel of a locked package that fits `target` best; None for a wheel of the folder."""
    name, version = str(package.get("name", "")), str(package.get("version", ""))
    wheels = package.get("wheels") or []
    remote = [w for w in wheels if "url" in w and not str(w["url"]).startswith("file:")]
    if len(remote) < len(wheels) or "archive" in package or "directory" in package:
        return None                                     # the folder has it (--find-links, a path)
    rank = {tag: i for i, tag in enumerate(target.tags())}
    fits: List[Tuple[int, Dict]] = []
    for entry in remote:
        try:
            _, _, _, tags = parse_wheel_filename(_filename(entry["url"]))
        except ValueError:
            continue
        best = min((rank[t] for t in tags if t in rank), default=None)
        if best is not None:
            fits.append((best, entry))
    if not fits:
        raise PackageError(f"{name} {version} has no wheel for {target.arch} / Python {target.python} "
                           f"({target.manylinux})", fix="pick a version that has one, or another --python")
    entry = min(fits, key=lambda f: f[0])[1]
    return checked(name, version, entry)


def checked(name: str, version: str, entry: Dict) -> Wheel:
    """The lock's wheel entry as a Wheel, every field checked: an http(s) URL, a safe file name of
    that package and version, a sha256."""
    url = str(entry["url"]).split("#", 1)[0]
    filename = _filename(url)
    sha256 = str((entry.get("hashes") or {}).get("sha256", ""))
    try:
        grammar.url(url)
        grammar.file_name(filename)
        wheel_name, wheel_version, _, _ = parse_wheel_filename(filename)
        Version(version)
    except ValueError as exc:
        raise PackageError(f"the index gave {name} {version} an unusable wheel URL: {exc}",
                           fix="use another index (--index-url)") from None
    if wheel_name != canonicalize_name(name) or wheel_version != Version(version):
        raise PackageError(f"the index gave {filename} for {name} {version}", fix="use another index (--index-url)")
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise PackageError(f"the index gave no sha256 for {filename}", fix="use an index that publishes hashes")
    size = entry.get("size")
    return Wheel(name=name, version=version, url=url, filename=filename, sha256=sha256,
                 size=size if isinstance(size, int) and size >= 0 else None)
