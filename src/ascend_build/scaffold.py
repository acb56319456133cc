"""`ascend-build init`: scaffold a working directory, optionally with a stand-in package set."""
import os
import platform
import re
from pathlib import Path
from typing import List

from jinja2 import Environment, PackageLoader, StrictUndefined

from . import grammar
from .demo import standins
from .errors import ConfigError
from .spec import CONFIG_NAME

DEMO_BASE_IMAGE_ENV = "ASCEND_BUILD_BASE_IMAGE"
DEMO_BASE_IMAGE = "localhost/ascend-build-base:bookworm"  # made by scripts/make-base-image.sh
ARCH_ALIASES = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}
REQUIREMENTS = "# Extra Python packages for the pta stage; put their wheels in this folder.\n"
OVERRIDES_README = """# Install-script overrides

A file here named `install_<stage>.sh` (`install_cann.sh`, `install_pta.sh`, `install_mindie.sh`,
or a custom stage's) replaces the install script ascend-build generates for that stage. `ascend-build plan -o DIR` shows the
generated scripts to start from. The stage's packages are in `$PKG_DIR` when the script runs.
"""


def parse_size(text: str) -> int:
    """'64MiB' -> 67108864; plain numbers are bytes; at most 4 GiB."""
    try:
        return grammar.size(text)
    except ValueError as exc:
        raise ConfigError(f"--filler: {exc}", fix="write a number with an optional unit, e.g. 512KiB or 64MiB") from None


def normalise_arch(arch: str) -> str:
    arch = platform.machine() if arch == "host" else arch
    if arch.lower() not in ARCH_ALIASES:
        raise ConfigError(f"unknown arch {arch!r}", fix="use x86_64 or aarch64")
    return ARCH_ALIASES[arch.lower()]


def scaffold(directory: Path, *, demo: bool, arch: str, cann: str, chip: str, python: str, filler: str,
             force: bool) -> List[Path]:
    """Write config, README, requirements.txt and install-scripts/ (and stand-ins with `demo`).
    Nothing is written when a file would be overwritten without `force`."""
    directory = Path(directory)
    arch = normalise_arch(arch)
    fill = parse_size(filler)
    try:
        chip = grammar.chip(chip)
    except ValueError as exc:
        raise ConfigError(f"--chip: {exc}", fix="use one of 310p, 910, 910b, A3, 950") from None
    family = standins.family(cann) if demo else None
    if not re.fullmatch(r"3\.\d+", python):
        raise ConfigError(f"unknown Python version {python!r}", fix="write it as MAJOR.MINOR, e.g. 3.11")
    env = Environment(loader=PackageLoader("ascend_build", "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True)
    context = {
        "demo": demo, "family": cann, "arch": arch, "chip": chip,
        "base_image": os.environ.get(DEMO_BASE_IMAGE_ENV, DEMO_BASE_IMAGE) if demo else "ubuntu:22.04",
    }
    files = {
        directory / CONFIG_NAME: env.get_template("ascend-build.yaml.j2").render(context),
        directory / "README.md": env.get_template("workdir-README.md.j2").render(context),
        directory / "requirements.txt": REQUIREMENTS,
        directory / "install-scripts" / "README.md": OVERRIDES_README,
    }
    packages = directory / "packages"
    clashes = [p for p in files if p.exists()]
    if demo and packages.is_dir() and any(packages.iterdir()):
        clashes.append(packages)
    if clashes and not force:
        raise ConfigError(f"{clashes[0]} already exists", fix="pass --force to overwrite, or pick another folder")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    written = list(files)
    if family:
        written += standins.generate(packages, cann=family.cann, arch=arch, chip=chip, python=python, fill=fill)
    return written
