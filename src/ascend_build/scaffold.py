"""`ascend-build init`: scaffold a working directory, optionally with a stand-in package set."""
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from jinja2 import Environment, PackageLoader, StrictUndefined

from . import grammar, outputs
from .workdir import STATE_DIR
from .demo import elflibs, standins
from .errors import ConfigError, OutputError
from .platforms import host_arch, normalise_arch
from .spec import CONFIG_NAME

STANDIN_MANIFEST = "standins.json"  # in STATE_DIR: file name -> sha256 of each stand-in init wrote

DEMO_BASE_IMAGE_ENV = "ASCEND_BUILD_BASE_IMAGE"
DEMO_BASE_IMAGE = "localhost/ascend-build-base:bookworm"  # made by scripts/make-base-image.sh
REQUIREMENTS = "# Extra Python packages for the pta stage; put their wheels in this folder.\n"
OVERRIDES_README = """# Install-script overrides

A file here named `install_<stage>.sh` (`install_cann.sh`, `install_pta.sh`, ..., or a custom
stage's) replaces the install script ascend-build generates for that stage. `ascend-build plan -o DIR` shows the
generated scripts to start from. The stage's packages are in `$PKG_DIR` when the script runs.
"""


def parse_size(text: str) -> int:
    """'64MiB' -> 67108864; plain numbers are bytes; at most 4 GiB."""
    try:
        return grammar.size(text)
    except ValueError as exc:
        raise ConfigError(f"--filler: {exc}", fix="write a number with an optional unit, e.g. 512KiB or 64MiB") from None

DEMO_ROOT = "demo-root.pem"


def demo_arch(arch: str) -> str:
    """`host` or an arch spelling -> x86_64 | aarch64."""
    found = host_arch() if arch == "host" else normalise_arch(arch)
    if found is None:
        raise ConfigError(f"unknown arch {arch!r}", fix="use x86_64 or aarch64")
    return found


def scaffold(directory: Path, *, demo: bool, arch: str, cann: str, chip: str, python: str, filler: str,
             force: bool, signed: bool = False, elf: Optional[bool] = None, more: Sequence[str] = ()) -> Tuple[List[Path], List[Path]]:
    """Write config, README, requirements.txt and install-scripts/ (and stand-ins with `demo`);
    return (written, kept). Nothing is written when a file would be overwritten without `force`;
    with `force` a package that is not a stand-in init wrote itself is kept, never replaced."""
    directory = Path(directory)
    arch = demo_arch(arch)
    fill = parse_size(filler)
    try:
        chip = grammar.chip(chip)
    except ValueError as exc:
        raise ConfigError(f"--chip: {exc}", fix="use one of 310p, 910, 910b, A3, 950") from None
    family = standins.family(cann) if demo else None
    if signed and not demo:
        raise ConfigError("--signed makes signed stand-ins: it needs --demo", fix="add --demo")
    if elf and not demo:
        raise ConfigError("--elf is about the stand-ins' libraries: it needs --demo", fix="add --demo")
    if elf:
        elflibs.use_elf(arch, True)          # no compiler: the error before anything is written
    if not re.fullmatch(r"3\.\d+", python):
        raise ConfigError(f"unknown Python version {python!r}", fix="write it as MAJOR.MINOR, e.g. 3.11")
    env = Environment(loader=PackageLoader("ascend_build", "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True)
    context = {
        "demo": demo, "family": cann, "arch": arch, "chip": chip, "signed": signed,
        "base_image": os.environ.get(DEMO_BASE_IMAGE_ENV, DEMO_BASE_IMAGE) if demo else "ubuntu:22.04",
    }
    files = {
        CONFIG_NAME: env.get_template("ascend-build.yaml.j2").render(context),
        "README.md": env.get_template("workdir-README.md.j2").render(context),
        "requirements.txt": REQUIREMENTS,
        "install-scripts/README.md": OVERRIDES_README,
    }
    outputs.check_folder(directory, force=True, inputs=None)
    packages = directory / "packages"
    for folder in (packages, directory / STATE_DIR) if demo else ():
        if os.path.lexists(folder) and not folder.is_dir():
            what = "a symbolic link to no folder (broken or a loop)" if folder.is_symlink() else "a file"
            raise ConfigError(f"{folder} is {what} where a folder is needed", fix=f"move {folder} away, or pick another folder")
    clashes = [directory / name for name in files if (directory / name).exists()]
    if demo and packages.is_dir() and any(packages.iterdir()):
        clashes.append(packages)
    if clashes and not force:
        raise ConfigError(f"{clashes[0]} already exists", fix="pass --force to overwrite, or pick another folder")
    ca = standins.make_ca(directory / STATE_DIR / "demo-ca", name="ascend-build demo root") if signed else None
    if ca:
        files[DEMO_ROOT] = ca.root.read_text()
    written = outputs.write_files(directory, files, replace=force)
    if not family:
        return written, []
    placed, kept = _place_standins(directory, lambda dest: standins.generate(
        dest, cann=cann, arch=arch, chip=chip, python=python, fill=fill, signed_by=ca, elf=elf, more=more))
    return written + placed, kept


def _place_standins(directory: Path, generate: Callable[[Path], List[Path]]) -> Tuple[List[Path], List[Path]]:
    """Generate the stand-ins in a temporary folder, then move each into packages/ unless a file
    of that name is there that init did not write (by the sha256 in the manifest): that one is kept."""
    packages, state = directory / "packages", directory / STATE_DIR
    manifest_path = state / STANDIN_MANIFEST
    known = _read_manifest(manifest_path)
    placed, kept, staging = [], [], None
    try:
        packages.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=outputs.TEMP_PREFIX, dir=directory))
        for source in generate(staging):
            target = packages / source.name
            if os.path.lexists(target) and not (target.is_file() and known.get(source.name) == _sha256(target)):
                kept.append(target)
                continue
            known[source.name] = _sha256(source)
            os.replace(source, target)
            placed.append(target)
            sidecar = Path(f"{source}.sha256")        # a stand-in with a name Huawei publishes
            if sidecar.exists():
                os.replace(sidecar, packages / sidecar.name)
        state.mkdir(exist_ok=True)
    except OSError as err:
        raise OutputError(f"could not write the stand-ins into {packages}: {err.strerror or err}",
                          fix="check the folder's permissions and free space") from None
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
    outputs.write_file(manifest_path, json.dumps(known, indent=2, sort_keys=True) + "\n", force=True, inputs=None)
    return placed, kept


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(path: Path) -> Dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
