"""The transfer archive's format. One uncompressed tar that is at the same time:

- an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/HEX`): one index entry per image,
  named by its reference (`org.opencontainers.image.ref.name`), the manifests kept byte for byte
  as the engine or registry had them (docker's or OCI's media types), so image ids and digests stay;
- a `docker load` archive (`manifest.json`), so a host without ascend-build can still load it;
- checked: `SHA256SUMS` (first, `sha256sum -c` format) lists every other file, and
  `ascend-build-archive.json` lists the images and the size of every blob.

skopeo's `dir:` folders are the working form on both sides: save moves their files into the
layout, load links the verified blobs back into one `dir:` folder per image."""
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

FORMAT = "ascend-build-archive/1"
SUMS = "SHA256SUMS"
INFO = "ascend-build-archive.json"
OCI_LAYOUT = "oci-layout"
INDEX = "index.json"
DOCKER_MANIFEST = "manifest.json"
BLOBS = "blobs/sha256"
ORDER = (SUMS, INFO, OCI_LAYOUT, INDEX, DOCKER_MANIFEST)     # the small files, first in the tar
REF_NAME = "org.opencontainers.image.ref.name"
LISTS = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
DIGEST = re.compile(r"sha256:([0-9a-f]{64})", re.ASCII)
HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)
CHUNK = 1 << 20


@dataclass
class Image:
    """One image of the archive: its reference and top manifest (a list for several arches)."""

    ref: str
    digest: str
    media_type: str
    size: int
    platforms: List[str] = field(default_factory=list)       # linux/amd64, ...
    instances: Dict[str, str] = field(default_factory=dict)  # platform -> manifest digest (lists only)
    config: Optional[str] = None                              # the image id (single-arch only)

    @property
    def is_list(self) -> bool:
        return self.media_type in LISTS


def blob_name(digest: str) -> str:
    return f"{BLOBS}/{digest.split(':', 1)[1]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def media_type_of(manifest: dict) -> str:
    """A manifest's media type: its own field, else OCI's by shape (OCI leaves it optional)."""
    found = manifest.get("mediaType")
    if isinstance(found, str) and found:
        return found
    return LISTS[1] if "manifests" in manifest else MANIFESTS[1]


def platform_text(platform: dict) -> str:
    text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return text + (f"/{platform['variant']}" if platform.get("variant") else "")


def arch_ref(ref: str, platform: str) -> str:
    """Where one arch of a list goes in an engine's store (one arch per name): NAME:TAG-ARCH."""
    name, _, tag = ref.rpartition(":")
    return f"{name}:{tag}-{'-'.join(platform.split('/')[1:])}"


# -- save: skopeo dir: folders -> the layout ------------------------------------------------------
def _take(folder: Path, name: str, root: Path) -> Tuple[str, int]:
    """Move one file of a dir: folder into the layout's blobs (kept once); its digest and size."""
    source = folder / name
    digest = sha256_file(source)
    target = root / blob_name(digest)
    size = source.stat().st_size
    if target.exists():
        source.unlink()
    else:
        os.replace(source, target)
    return digest, size


def _config_platform(root: Path, manifest: dict) -> Tuple[Optional[str], Optional[str]]:
    config = manifest.get("config") or {}
    digest = config.get("digest")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        return None, None
    try:
        data = json.loads((root / blob_name(digest)).read_bytes())
    except (OSError, ValueError):
        return digest, None
    return digest, platform_text(data) if isinstance(data, dict) else None


def add_dir(root: Path, ref: str, folder: Path) -> Image:
    """Move the files of skopeo's `dir:` copy of `ref` into the layout under `root`."""
    (root / BLOBS).mkdir(parents=True, exist_ok=True)
    manifest = json.loads((folder / "manifest.json").read_bytes())
    for name in sorted(os.listdir(folder)):
        if HEX.fullmatch(name) or (name.endswith(".manifest.json") and HEX.fullmatch(name[:-14])):
            _take(folder, name, root)
    digest, size = _take(folder, "manifest.json", root)
    image = Image(ref, digest, media_type_of(manifest), size)
    if image.is_list:
        for entry in manifest.get("manifests", []):
            platform = platform_text(entry.get("platform") or {})
            if platform.startswith("linux/"):          # not buildx's attestations (unknown/unknown)
                image.platforms.append(platform)
                image.instances[platform] = entry["digest"]
    else:
        image.config, platform = _config_platform(root, manifest)
        image.platforms = [platform] if platform else []
    return image


def manifest_of(root: Path, digest: str) -> dict:
    return json.loads((root / blob_name(digest)).read_bytes())


def docker_entries(root: Path, images: List[Image]) -> List[dict]:
    """`docker load`'s manifest.json: each single-arch image under its name, each arch of a list
    under NAME:TAG-ARCH (docker keeps one arch per name)."""
    entries = []
    for image in images:
        parts = ([(image.ref, image.digest)] if not image.is_list else
                 [(arch_ref(image.ref, p), d) for p, d in image.instances.items()])
        for tag, digest in parts:
            manifest = manifest_of(root, digest)
            entries.append({"Config": blob_name(manifest["config"]["digest"]), "RepoTags": [tag],
                            "Layers": [blob_name(layer["digest"]) for layer in manifest.get("layers", [])]})
    return entries


def finish(root: Path, images: List[Image], sources: Dict[str, str], created_by: str) -> List[str]:
    """Write the layout's small files; the tar's member names, in order."""
    index = {"schemaVersion": 2, "mediaType": LISTS[1], "manifests": [
        {"mediaType": i.media_type, "digest": i.digest, "size": i.size, "annotations": {REF_NAME: i.ref}} for i in images]}
    blobs = sorted(f"sha256:{name}" for name in os.listdir(root / BLOBS))
    info = {"format": FORMAT, "created_by": created_by,
            "images": [{"ref": i.ref, "digest": i.digest, "media_type": i.media_type, "platforms": i.platforms,
                        "image_id": i.config, "source": sources.get(i.ref, "")} for i in images],
            "blobs": {d: (root / blob_name(d)).stat().st_size for d in blobs}}
    files = {OCI_LAYOUT: {"imageLayoutVersion": "1.0.0"}, INDEX: index,
             DOCKER_MANIFEST: docker_entries(root, images), INFO: info}
    for name, data in files.items():
        (root / name).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    members = [*ORDER[1:], *(blob_name(d) for d in blobs)]
    lines = [f"{sha256_file(root / n).split(':', 1)[1] if not n.startswith(BLOBS) else n.rsplit('/', 1)[1]}  {n}\n"
             for n in members]
    (root / SUMS).write_text("".join(lines), encoding="ascii")
    return [SUMS, *members]
