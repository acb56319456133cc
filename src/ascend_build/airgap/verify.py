"""Reading an archive for `load`: every file is checked while it is unpacked into a private
folder, and the images' structure after, before anything reaches an engine or a registry.

- only the layout's own names (no links, devices, absolute paths or `..`), each once;
- SHA256SUMS first: every other file listed there, and every listed file present;
- each file's sha256 against SHA256SUMS, each blob's against its own name;
- each blob's size against ascend-build-archive.json, and against every descriptor that names it
  (index.json -> manifest list -> manifest -> config and layers);
- image references by the same grammar as everywhere else.

What is loaded afterwards is exactly these checked bytes (the unpacked copy), never the archive
again."""
import hashlib
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .. import grammar
from ..errors import ArchiveError
from .layout import (BLOBS, CHUNK, DIGEST, FORMAT, HEX, INDEX, INFO, LISTS, MANIFESTS, ORDER, REF_NAME, SUMS,
                     Image, blob_name, platform_text)

MAX_SMALL = 64 << 20              # the JSON files and SHA256SUMS
Progress = Optional[Callable[[int], None]]


@dataclass
class Unpacked:
    root: Path
    images: List[Image]
    blobs: Dict[str, int]         # digest -> size
    info: dict


class _Counting:
    def __init__(self, handle, on_bytes: Progress):
        self.handle, self.on_bytes = handle, on_bytes

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        if self.on_bytes and data:
            self.on_bytes(len(data))
        return data


def _short(digest: str) -> str:
    return digest[:19] + "…"


def _name_of(member: tarfile.TarInfo) -> str:
    name = member.name[2:] if member.name.startswith("./") else member.name
    name = name.rstrip("/") if member.isdir() else name
    allowed = name in ORDER or name in ("blobs", BLOBS) or (
        name.startswith(BLOBS + "/") and HEX.fullmatch(name[len(BLOBS) + 1:]) is not None)
    if not allowed:
        raise ArchiveError(f"the archive holds {name!r}, which is no part of an archive `ascend-build save` writes",
                           fix="load only archives written by `ascend-build save`")
    if member.isdir() != (name in ("blobs", BLOBS)) or not (member.isdir() or member.isfile()):
        raise ArchiveError(f"{name} in the archive is not a regular file (a link, device or folder)",
                           fix="load only archives written by `ascend-build save`")
    return name


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> str:
    source = tar.extractfile(member)
    digest = hashlib.sha256()
    written = 0
    with open(target, "xb") as out:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            written += len(chunk)
    if written != member.size:
        raise ArchiveError(f"{member.name} is cut short in the archive", fix="copy the archive again")
    return digest.hexdigest()


def parse_sums(text: str) -> Dict[str, str]:
    """SHA256SUMS -> {name: hex}; each blob's line must repeat its name's digest."""
    sums: Dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        hexdigest, sep, name = line.partition("  ")
        name = name[1:] if name.startswith("*") else name
        ok = sep and HEX.fullmatch(hexdigest) and name not in sums and name != SUMS and (
            name in ORDER or (name.startswith(BLOBS + "/") and name.rsplit("/", 1)[1] == hexdigest))
        if not ok:
            raise ArchiveError(f"SHA256SUMS of the archive is damaged at line {number}: {line[:120]!r}",
                               fix="copy the archive again from the machine where `ascend-build save` wrote it")
        sums[name] = hexdigest
    for name in (INFO, INDEX):
        if name not in sums:
            raise ArchiveError(f"SHA256SUMS of the archive does not list {name}", fix="load only archives written by `ascend-build save`")
    return sums


def _json(root: Path, name: str):
    try:
        return json.loads((root / name).read_bytes())
    except (OSError, ValueError) as err:
        raise ArchiveError(f"{name} of the archive is not JSON: {err}") from None


def _check_space(root: Path, info: dict, archive: Path) -> None:
    blobs = info.get("blobs") if isinstance(info, dict) else None
    if not isinstance(blobs, dict) or not all(isinstance(s, int) and s >= 0 for s in blobs.values()):
        raise ArchiveError(f"{INFO} of the archive has no list of blob sizes", fix="load only archives written by `ascend-build save`")
    need, free = sum(blobs.values()), shutil.disk_usage(root).free
    if need > free:
        raise ArchiveError(f"unpacking {archive} needs {need >> 20} MiB in {root.parent}; {free >> 20} MiB are free",
                           fix="free some space, or unpack elsewhere with --temp-dir DIR (or TMPDIR)")


def unpack(archive: Path, root: Path, on_bytes: Progress = None) -> Unpacked:
    """Unpack `archive` into the empty folder `root`, checking every file; ArchiveError naming the
    first damaged file. Nothing outside `root` is written."""
    (root / BLOBS).mkdir(parents=True)
    sums: Optional[Dict[str, str]] = None
    info: Optional[dict] = None
    seen = set()
    try:
        with open(archive, "rb") as raw, tarfile.open(fileobj=_Counting(raw, on_bytes), mode="r|") as tar:
            for member in tar:
                name = _name_of(member)
                if member.isdir():
                    continue
                if name in seen:
                    raise ArchiveError(f"the archive holds {name} twice", fix="load only archives written by `ascend-build save`")
                if sums is None and name != SUMS:
                    raise ArchiveError(f"{archive} does not start with SHA256SUMS: not an archive `ascend-build save` wrote",
                                       fix="write it with `ascend-build save IMAGE... -o FILE`")
                if sums is not None and name not in sums:
                    raise ArchiveError(f"{name} in the archive is not listed in its SHA256SUMS",
                                       fix="copy the archive again from the machine where `ascend-build save` wrote it")
                if not name.startswith(BLOBS) and member.size > MAX_SMALL:
                    raise ArchiveError(f"{name} in the archive is {member.size} bytes, too large to be what save writes")
                digest = "sha256:" + name.rsplit("/", 1)[1] if name.startswith(BLOBS) else None
                if digest and info is not None and info["blobs"].get(digest) != member.size:
                    raise ArchiveError(f"blob {digest} in the archive is {member.size} bytes; {INFO} says "
                                       f"{info['blobs'].get(digest)}", fix="copy the archive again")
                got = _extract(tar, member, root / name)
                seen.add(name)
                if name == SUMS:
                    sums = parse_sums((root / SUMS).read_text(encoding="ascii", errors="replace"))
                    continue
                if got != sums[name]:
                    what = f"blob {digest}" if digest else name
                    raise ArchiveError(f"{what} in {archive} is damaged: its bytes hash to sha256:{got}, "
                                       f"not {('its name' if digest else 'what SHA256SUMS says')}; nothing was loaded",
                                       fix="copy the archive again from the machine where `ascend-build save` wrote it")
                if name == INFO:
                    info = _json(root, INFO)
                    _check_space(root, info, archive)
    except tarfile.TarError as err:
        raise ArchiveError(f"{archive} is not a readable tar archive ({err}): damaged or cut short",
                           fix="copy the archive again") from None
    except OSError as err:
        raise ArchiveError(f"could not unpack {archive} into {root}: {err.strerror or err}",
                           fix="check the free space there, or unpack elsewhere with --temp-dir DIR") from None
    if sums is None:
        raise ArchiveError(f"{archive} is empty", fix="write it with `ascend-build save IMAGE... -o FILE`")
    missing = sorted(set(sums) - seen)
    if missing:
        raise ArchiveError(f"{archive} is cut short: {len(missing)} listed files are missing ({', '.join(missing[:3])})",
                           fix="copy the archive again")
    return Unpacked(root, check_structure(root, info, sums), info["blobs"], info)


def _descriptor(desc, where: str, sizes: Dict[str, int], types) -> str:
    """A descriptor's digest, after checking it names a blob of the archive of its size."""
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str) or not DIGEST.fullmatch(desc["digest"]):
        raise ArchiveError(f"{where} has a descriptor without a sha256 digest", fix="load only archives written by `ascend-build save`")
    digest = desc["digest"]
    if types and desc.get("mediaType") not in types:
        raise ArchiveError(f"{where} names {_short(digest)} as {desc.get('mediaType')!r}, which load does not handle")
    if digest not in sizes:
        raise ArchiveError(f"{where} names blob {digest}, which the archive lacks", fix="copy the archive again")
    if desc.get("size") != sizes[digest]:
        raise ArchiveError(f"blob {digest} is {sizes[digest]} bytes, but {where} says {desc.get('size')}",
                           fix="copy the archive again")
    return digest


def _manifest(root: Path, digest: str) -> dict:
    data = _json(root, blob_name(digest))
    if not isinstance(data, dict):
        raise ArchiveError(f"blob {digest} is not a manifest")
    return data


def _image_manifest(root: Path, digest: str, sizes: Dict[str, int]) -> dict:
    manifest = _manifest(root, digest)
    where = f"manifest {_short(digest)}"
    config = _descriptor(manifest.get("config"), where, sizes, None)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ArchiveError(f"{where} has no list of layers")
    for layer in layers:
        _descriptor(layer, where, sizes, None)
    return {"config": config, "manifest": manifest}


def check_structure(root: Path, info: dict, sums: Dict[str, str]) -> List[Image]:
    if info.get("format") != FORMAT:
        raise ArchiveError(f"the archive is in format {info.get('format')!r}; this ascend-build reads {FORMAT}",
                           fix="load it with the ascend-build version that saved it")
    sizes = {d: s for d, s in info["blobs"].items()}
    listed = {"sha256:" + n.rsplit("/", 1)[1] for n in sums if n.startswith(BLOBS)}
    if set(sizes) != listed:
        raise ArchiveError(f"{INFO} and SHA256SUMS of the archive list different blobs", fix="copy the archive again")
    for digest, size in sizes.items():
        actual = (root / blob_name(digest)).stat().st_size
        if actual != size:
            raise ArchiveError(f"blob {digest} is {actual} bytes; {INFO} says {size}", fix="copy the archive again")
    index = _json(root, INDEX)
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ArchiveError(f"{INDEX} of the archive lists no image")
    images: List[Image] = []
    for entry in entries:
        digest = _descriptor(entry, INDEX, sizes, LISTS + MANIFESTS)
        ref = ((entry.get("annotations") or {}).get(REF_NAME)) if isinstance(entry.get("annotations"), dict) else None
        try:
            ref = grammar.image_reference(ref if isinstance(ref, str) else "")
        except ValueError as err:
            raise ArchiveError(f"{INDEX} of the archive names an image {ref!r}: {err}") from None
        if "@" in ref or ref in (i.ref for i in images):
            raise ArchiveError(f"{INDEX} of the archive names {ref!r} twice or by digest")
        image = Image(ref, digest, entry["mediaType"], entry["size"])
        if image.is_list:
            for child in _manifest(root, digest).get("manifests") or []:
                instance = _descriptor(child, f"manifest list {_short(digest)}", sizes, MANIFESTS)
                _image_manifest(root, instance, sizes)
                platform = platform_text(child.get("platform") or {})
                if platform.startswith("linux/"):
                    image.platforms.append(platform)
                    image.instances[platform] = instance
            if not image.instances:
                raise ArchiveError(f"the manifest list of {ref} has no linux image")
        else:
            found = _image_manifest(root, digest, sizes)
            image.config = found["config"]
            config = _json(root, blob_name(image.config))
            image.platforms = [platform_text(config)] if isinstance(config, dict) else []
        images.append(image)
    said = [(i.get("ref"), i.get("digest")) for i in info.get("images") or [] if isinstance(i, dict)]
    if said != [(i.ref, i.digest) for i in images]:
        raise ArchiveError(f"{INFO} and {INDEX} of the archive name different images", fix="copy the archive again")
    return images
