"""save and load: which store each image comes from or goes to, in what order, and the checks
around them. skopeo does the copying (engines/skopeo.py); layout.py, tarball.py and verify.py
are the archive. Every argument is checked in check_save / check_load, before any work."""
import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Dict, List, Optional, Tuple

from .. import __version__, grammar
from ..engines import registry
from ..engines.base import Engine
from ..engines.skopeo import Skopeo, message_of
from ..errors import ConfigError, EngineError
from ..outputs import Inputs, file_in_place
from ..platforms import PLATFORMS, host_arch
from . import tarball
from .layout import Image, add_dir, arch_ref, blob_name, finish, manifest_of
from .verify import Unpacked, unpack

SOURCES = ("auto", "engine", "registry")
EngineChoice = Callable[[], Engine]


class View:
    """What save and load tell a person; the CLI's is airgap/view.py. This one says nothing."""

    def info(self, text: str) -> None:
        pass

    def bytes(self, label: str, total: int) -> ContextManager[Callable[[int], None]]:
        return contextlib.nullcontext(lambda n: None)

    def copy(self, label: str, blobs: Optional[int] = None) -> ContextManager[Callable[[str], None]]:
        return contextlib.nullcontext(lambda line: None)


@dataclass(frozen=True)
class SaveRequest:
    images: Tuple[str, ...]
    output: Path
    source: str = "auto"                 # auto: a registry's copy when the reference names one that has it
    insecure_registry: bool = False
    force: bool = False
    inputs: Optional[Inputs] = None      # a working directory's files, never written over (the CLI: the current one)


@dataclass(frozen=True)
class LoadRequest:
    archive: Path
    push: Optional[str] = None           # REGISTRY/NAME:TAG: push there instead of loading into the engine
    image: Optional[str] = None          # which image of the archive (all when None; --push needs one)
    insecure_registry: bool = False
    allow_insecure_remote: bool = False
    temp_dir: Optional[Path] = None


def tagged(value: str, what: str) -> str:
    """An image reference by the grammar, with a tag (`:latest` when none), never by digest."""
    try:
        grammar.image_reference(value)
    except ValueError as err:
        raise ConfigError(f"{what} {value!r}: {err}", fix="name it as REGISTRY/NAME:TAG or NAME:TAG") from None
    if "@" in value:
        raise ConfigError(f"{what} {value!r} names a digest; save and load name images by tag",
                          fix="give its tag (e.g. 127.0.0.1:5000/app:1.0)")
    last = value.rsplit("/", 1)[-1]
    return value if ":" in last else f"{value}:latest"


def check_save(req: SaveRequest) -> List[str]:
    if not req.images:
        raise ConfigError("save needs at least one image", fix="ascend-build save IMAGE... -o FILE")
    if req.source not in SOURCES:
        raise ConfigError(f"--from {req.source!r} is not one of {', '.join(SOURCES)}", fix="--from auto, engine or registry")
    refs = list(dict.fromkeys(tagged(i, "image") for i in req.images))
    for ref in refs:
        if req.source == "registry" and not registry.registry_of(ref):
            raise ConfigError(f"--from registry: {ref} names no registry", fix="name it as REGISTRY/NAME:TAG")
        if req.insecure_registry and req.source != "engine":
            registry.check_insecure(registry.registry_of(ref), True, False)
    return refs


def check_load(req: LoadRequest) -> Tuple[Optional[str], Optional[str], Path]:
    if not req.archive.is_file():
        what = "is a folder" if req.archive.is_dir() else "does not exist"
        raise ConfigError(f"the archive {req.archive} {what}", fix="give the FILE `ascend-build save -o FILE` wrote")
    push = tagged(req.push, "--push") if req.push else None
    if push:
        if not registry.registry_of(push):
            raise ConfigError(f"--push {push} names no registry", fix="--push REGISTRY/NAME:TAG, e.g. registry.site:5000/app:1.0")
        registry.check_insecure(registry.registry_of(push), req.insecure_registry, req.allow_insecure_remote)
    image = tagged(req.image, "--image") if req.image else None
    temp = Path(req.temp_dir or os.environ.get("TMPDIR") or "/var/tmp")
    if not temp.is_dir():
        raise ConfigError(f"the temporary folder {temp} does not exist", fix="--temp-dir DIR on a disk with room for the archive")
    return push, image, temp


# -- save -------------------------------------------------------------------------------------------
def _tls(insecure: bool, side: str) -> List[str]:
    return [f"--{side}-tls-verify=false"] if insecure else []


def _where(ref: str, req: SaveRequest, skopeo: Skopeo, engine: Callable[[], Engine], view: View) -> Tuple[str, str, List[str]]:
    """(what to call the source, skopeo's source, skopeo's flags) for one image."""
    reg, why = registry.registry_of(ref), None
    local_name = reg == "localhost" and req.source == "auto"     # podman's prefix for local images, no registry
    if reg and req.source != "engine" and not local_name:
        answer = skopeo.inspect_raw(f"docker://{ref}", ["--retry-times", "0", *(["--tls-verify=false"] if req.insecure_registry else [])])
        if answer.returncode == 0:
            kind = "manifest list" if json.loads(answer.stdout or "{}").get("manifests") else "image"
            return f"registry {reg}, {kind}", f"docker://{ref}", ["--all", "--preserve-digests", *_tls(req.insecure_registry, "src")]
        why = message_of(answer.stderr)
        if req.source == "registry":
            raise EngineError(f"{reg} has no {ref}: {why}", fix=_registry_fix(why))
    store = engine()
    found = store.find_image(ref)
    if found is None:
        raise ConfigError(f"{ref} is not in {store.binary}'s image store" + (f", and {reg} answered: {why}" if why else ""),
                          fix=_registry_fix(why) if why else f"build or pull it first, or check the name with `{store.binary} images`")
    if why:
        view.info(f"{reg} answered: {why}; saving {ref} from {store.binary}'s store")
    # by its id: the image found now (the name may change meanwhile), and podman's short names
    # (`localhost/` added) that skopeo would read as docker.io's
    return f"{store.binary}'s store", store.store_reference(found["Id"]), ["--dest-compress", *store.store_flags("src")]


def _registry_fix(why: Optional[str]) -> str:
    if why and "http response to https client" in why.lower():
        return "the registry speaks plain HTTP: add --insecure-registry (for a registry on this host)"
    return "check the name and that the registry answers, or save the engine's copy with --from engine"


def save(req: SaveRequest, engine: EngineChoice, skopeo: Skopeo, view: View = View()) -> dict:
    """Copy each image into one archive at req.output; what it holds."""
    refs = check_save(req)
    chosen: Dict[str, Engine] = {}

    def the_engine() -> Engine:
        if "engine" not in chosen:
            chosen["engine"] = engine()
        return chosen["engine"]

    with file_in_place(req.output, req.force, req.inputs) as temp:
        staging = Path(tempfile.mkdtemp(prefix=f".{req.output.name}.parts-", dir=req.output.absolute().parent))
        try:
            root, images, sources = staging / "layout", [], {}
            for number, ref in enumerate(refs):
                where, source, flags = _where(ref, req, skopeo, the_engine, view)
                folder = staging / f"image-{number}"
                with view.copy(f"{ref} from {where}") as on_line:
                    skopeo.copy(source, f"dir:{folder}", flags, tmpdir=str(staging), on_line=on_line)
                images.append(add_dir(root, ref, folder))
                sources[ref] = where
                shutil.rmtree(folder)
            members = finish(root, images, sources, f"ascend-build {__version__}")
            total = sum((root / m).stat().st_size for m in members)
            with view.bytes(f"writing {req.output.name}", total) as advance:
                size = tarball.write(root, members, temp, advance)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {"archive": str(req.output), "size_bytes": size, "blobs": sum(1 for m in members if m.startswith("blobs/")),
            "images": [{"ref": i.ref, "digest": i.digest, "platforms": i.platforms, "image_id": i.config,
                        "source": sources[i.ref]} for i in images]}


# -- load -------------------------------------------------------------------------------------------
def dir_view(root: Path, digest: str, folder: Path, is_list: bool = False) -> int:
    """skopeo's `dir:` form of the manifest `digest` (a list with its instances, or one image),
    its files hard-linked from the verified blobs; how many blobs it holds."""
    folder.mkdir()
    (folder / "version").write_text("Directory Transport Version: 1.1\n")
    os.link(root / blob_name(digest), folder / "manifest.json")
    top = manifest_of(root, digest)
    manifests = [(c["digest"], manifest_of(root, c["digest"])) for c in top["manifests"]] if is_list else [(None, top)]
    blobs = set()
    for instance, manifest in manifests:
        if instance:
            os.link(root / blob_name(instance), folder / f"{instance.split(':', 1)[1]}.manifest.json")
        blobs |= {d["digest"] for d in [manifest["config"], *manifest.get("layers", [])]}
    for blob in blobs:
        os.link(root / blob_name(blob), folder / blob.split(":", 1)[1])
    return len(blobs)


def _same_id(found: str, config: Optional[str]) -> bool:
    return bool(config) and found.split(":")[-1] == config.split(":")[-1]


def _into_engine(unpacked: Unpacked, image: Image, store: Engine, skopeo: Skopeo, work: Path, view: View) -> List[dict]:
    here = PLATFORMS.get(host_arch() or "")
    parts = ([(image.ref, image.digest, image.platforms[0] if image.platforms else "")] if not image.is_list else
             [(arch_ref(image.ref, p), d, p) for p, d in image.instances.items()])
    loaded = []
    for ref, digest, platform in parts:
        folder = work / f"view-{len(list(work.iterdir()))}"
        blobs = dir_view(unpacked.root, digest, folder)
        with view.copy(f"loading {ref} into {store.binary}", blobs) as on_line:
            skopeo.copy(f"dir:{folder}", store.store_reference(ref), store.store_flags("dest"), tmpdir=str(work), on_line=on_line)
        shutil.rmtree(folder)
        store.found.clear()
        config = manifest_of(unpacked.root, digest)["config"]["digest"]
        found = store.inspect(ref)["Id"]
        if not _same_id(found, config):
            raise EngineError(f"{store.binary} holds {ref} as {found}, not the archive's image {config}")
        loaded.append({"ref": ref, "platform": platform, "image_id": config})
        if image.is_list and platform == here:
            store.tag(ref, image.ref)
            loaded.append({"ref": image.ref, "platform": platform, "image_id": config})
    return loaded


def _push(unpacked: Unpacked, image: Image, target: str, insecure: bool, skopeo: Skopeo, work: Path, view: View) -> dict:
    folder = work / "push"
    blobs = dir_view(unpacked.root, image.digest, folder, image.is_list)
    digest_file = work / "digest"
    flags = [*(["--all"] if image.is_list else []), "--preserve-digests", *_tls(insecure, "dest"), "--digestfile", str(digest_file)]
    with view.copy(f"pushing {image.ref} to {target}", blobs) as on_line:
        skopeo.copy(f"dir:{folder}", f"docker://{target}", flags, tmpdir=str(work), on_line=on_line)
    digest = digest_file.read_text().strip()
    if digest != image.digest:
        raise EngineError(f"{target} got the digest {digest}, not the archive's {image.digest}")
    return {"ref": target, "digest": digest, "platforms": image.platforms}


def load(req: LoadRequest, engine: EngineChoice, skopeo: Skopeo, view: View = View()) -> dict:
    """Verify the whole archive, then load its images into the engine (or push one)."""
    push, only, temp = check_load(req)
    store = None if push else engine()       # a missing engine is said before the long check
    work = Path(tempfile.mkdtemp(prefix="ascend-build-load-", dir=temp))
    try:
        with view.bytes(f"verifying {req.archive.name}", req.archive.stat().st_size) as advance:
            unpacked = unpack(req.archive, work / "layout", advance)
        view.info(f"verified {len(unpacked.blobs)} blobs of {len(unpacked.images)} image(s): every sha256 and size matches")
        images = [i for i in unpacked.images if only in (None, i.ref)]
        if not images:
            raise ConfigError(f"the archive holds no {only}", fix="it holds: " + ", ".join(i.ref for i in unpacked.images))
        if push and len(images) > 1:
            raise ConfigError(f"--push names one image, and the archive holds {len(images)}",
                              fix="pick one with --image: " + ", ".join(i.ref for i in images))
        if push:
            return {"archive": str(req.archive), "pushed": [_push(unpacked, images[0], push, req.insecure_registry, skopeo, work, view)]}
        loaded = [part for image in images for part in _into_engine(unpacked, image, store, skopeo, work, view)]
        return {"archive": str(req.archive), "loaded": loaded}
    finally:
        shutil.rmtree(work, ignore_errors=True)
