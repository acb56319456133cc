"""Stand-in Ascend packages (shared/standins.md): small files with the real names that behave
like the real installers in every way a build tool can observe. They install placeholder files,
and the CANN libraries the real torch_npu loads as real ELF files for the target arch (elflibs),
at the real paths of each CANN family's layout.

`generate()` writes a whole set; `make_run()`, `make_wheel()` and `make_atb_tarball()` write one
file each, so tests can build odd sets (wrong arch, mismatched versions, corrupt files).
"""
import base64
import csv
import gzip
import hashlib
import io
import random
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from packaging.utils import canonicalize_name
from packaging.version import Version

from .. import yamltext
from ..catalog import published
from ..errors import ConfigError
from . import elflibs

STANDIN_NOTE = "stand-in package made by ascend-build: installs placeholder files only"


@dataclass(frozen=True)
class Family:
    """Versions that belong together (one row of demo/families.yaml)."""

    cann: str
    chip_package: str
    torch: str
    torch_npu: str
    mindie: str
    mindie_abi_in_name: bool
    atb_models: str              # tarball, wheel, or bundled (in MindIE 2.1+), or none (MindIE as wheels)
    abi: Union[int, Dict[str, int]]  # torch's C++ ABI, or one per arch
    mindie_form: str = "run"     # run, or wheels (MindIE 3.x: mindie_llm, mindie_sd, mindie_motor)
    runtime: str = "toolkit"     # toolkit, the runtime-only nnrt / nnae package (up to 8.3), or pip (8.5+: wheels)
    mindspore: Optional[str] = None  # the MindSpore release made for the family's CANN
    vllm_ascend: Optional[str] = None  # vLLM-Ascend (and vLLM of its release, from source) with triton-ascend
    triton_ascend: Optional[str] = None

    def abi_for(self, arch: str) -> int:
        return self.abi[arch] if isinstance(self.abi, dict) else self.abi


def families() -> Dict[str, Family]:
    text = resources.files(__package__).joinpath("families.yaml").read_text()
    return {name: Family(**row) for name, row in yamltext.load(text).items()}


def family(name: str) -> Family:
    known = families()
    if name not in known:
        raise ConfigError(f"unknown demo CANN family {name!r}", fix=f"use one of: {', '.join(known)}")
    return known[name]


# -- helpers -----------------------------------------------------------------------------------


def filler(n: int, seed: str) -> bytes:
    """Incompressible, reproducible bytes: the same seed gives the same content. Made in 64 MiB
    chunks (randbytes refuses 256 MiB and more at once)."""
    rng, chunk = random.Random(seed), 1 << 26
    return b"".join(rng.randbytes(min(chunk, n - start)) for start in range(0, max(n, 0), chunk))


def py_tag(python: str) -> str:
    major, minor = python.split(".")[:2]
    return f"cp{major}{minor}"


def wheel_platforms(arch: str, manylinux: bool) -> List[str]:
    if manylinux:
        return [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]
    return [f"linux_{arch}"]


def _targz(entries: Mapping[str, bytes], modes: Optional[Mapping[str, int]] = None) -> bytes:
    """A gzip'd tar of regular files only (no directory entries, so installing into an
    existing tree never changes the modes of directories that are already there)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in sorted(entries.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = (modes or {}).get(name, 0o644)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


# -- wheels ------------------------------------------------------------------------------------


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"

STANDIN_BUILD = "0standin"


def build_wheel(
    name: str,
    version: str,
    tags: Tuple[str, str, Sequence[str]],
    files: Mapping[str, bytes],
    requires: Iterable[str] = (),
) -> Tuple[str, bytes]:
    """A valid PEP 427 wheel (METADATA, WHEEL, RECORD) as (file name, bytes).

    `tags` is (python tag, abi tag, platform tags); several platforms make a compressed tag set.
    The name carries the build tag `0standin`: Huawei publishes the sha256 of the official
    torch/torch_npu wheels (catalog/published.json), and a stand-in is not that build.
    """
    python, abi, platforms = tags
    dist = canonicalize_name(name).replace("-", "_")
    filename = f"{dist}-{version}-{STANDIN_BUILD}-{python}-{abi}-{'.'.join(platforms)}.whl"
    info_dir = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {STANDIN_NOTE}\n"
    metadata += "".join(f"Requires-Dist: {req}\n" for req in requires)
    wheel = "Wheel-Version: 1.0\nGenerator: ascend-build\nRoot-Is-Purelib: false\n"
    wheel += "".join(f"Tag: {python}-{abi}-{plat}\n" for plat in platforms)
    contents = dict(files)
    contents[f"{info_dir}/METADATA"] = metadata.encode()
    contents[f"{info_dir}/WHEEL"] = wheel.encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in contents.items():
        writer.writerow([path, _record_hash(data), len(data)])
    writer.writerow([f"{info_dir}/RECORD", "", ""])
    contents[f"{info_dir}/RECORD"] = record.getvalue().encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for member, data in contents.items():
            method = zipfile.ZIP_STORED if member.endswith(".bin") else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=method)
    return filename, out.getvalue()


def make_wheel(dest_dir: Path, *args, **kwargs) -> Path:
    """Write `build_wheel(*args, **kwargs)` into `dest_dir` and return its path."""
    filename, data = build_wheel(*args, **kwargs)
    path = Path(dest_dir) / filename
    path.write_bytes(data)
    return path


def torch_init(version: str, abi: int) -> bytes:
    return (
        f'"""{STANDIN_NOTE}"""\n__version__ = "{version}"\n\n\n'
        f"def compiled_with_cxx11_abi():\n    return {bool(abi)}\n"
    ).encode()


TORCH_NPU_INIT = '''"""{note}"""
import os

import torch  # noqa: F401  (the real torch_npu imports torch first)


def _cann_found():
    # the real torch_npu asks for ASCEND_HOME_PATH and ASCEND_OPP_PATH (the nnrt/nnae set_env.sh
    # files export no ASCEND_TOOLKIT_HOME)
    if not (os.environ.get("ASCEND_TOOLKIT_HOME") or os.environ.get("ASCEND_HOME_PATH")):
        return False
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    return any(os.path.isfile(os.path.join(d, "libascendcl.so")) for d in dirs)


if not _cann_found():
    raise ImportError(
        "libhccl.so: cannot open shared object file: No such file or directory "
        "(stand-in torch_npu: set ASCEND_HOME_PATH or ASCEND_TOOLKIT_HOME and put libascendcl.so on LD_LIBRARY_PATH, "
        "e.g. source /usr/local/Ascend/ascend-toolkit/set_env.sh)"
    )

__version__ = "{version}"
'''


def simple_module(version: str) -> bytes:
    return f'"""{STANDIN_NOTE}"""\n__version__ = "{version}"\n'.encode()


# -- .run installers ---------------------------------------------------------------------------


def _header_template() -> str:
    return resources.files(__package__).joinpath("installer.sh").read_text()


def make_run(
    path: Path,
    *,
    component: str,
    name: str,
    version: str,
    arch: str,
    files: Mapping[str, bytes],
    dirs: Sequence[str],
    templates: Sequence[str] = (),
    home: str = "",
) -> Path:
    """Write a makeself-2.4-style self-extracting installer.

    `files` are paths relative to the install path (templates carry a `.in` suffix and have
    `@INSTALL_PATH@` replaced at install time); `dirs` get their modes set after install; `home`
    is the package's own folder (the toolkit's `latest` link points at it).
    """
    payload = _targz(files)
    fields = {
        "@FILESIZES@": str(len(payload)),
        "@SHA@": hashlib.sha256(payload).hexdigest(),
        "@MD5@": hashlib.md5(payload).hexdigest(),  # noqa: S324 - makeself's own field
        "@LABEL@": f"{name} {version} ({STANDIN_NOTE})",
        "@NAME@": name,
        "@COMPONENT@": component,
        "@VERSION@": version,
        "@ARCH@": arch,
        "@DIRS@": " ".join(dirs),
        "@TEMPLATES@": " ".join(templates),
        "@HOME@": home,
    }
    header = _header_template()
    for key, value in fields.items():
        header = header.replace(key, value)
    header = header.replace("@SKIP@", str(header.count("\n")))
    path = Path(path)
    path.write_bytes(header.encode() + payload)
    path.chmod(0o755)
    return path


def toolkit_home(version: str) -> str:
    """Where the toolkit installs under the install path: `cann-<v>` from 8.5, before `ascend-toolkit/<v>`."""
    return f"cann-{version}" if Version(version).release[:2] >= (8, 5) else f"ascend-toolkit/{version}"


# The toolkit's environment as the real set_env.sh sets it ({home}: its home, from the install path).
TOOLKIT_ENV = """# CANN toolkit environment ({note})
export ASCEND_TOOLKIT_HOME={home}
export LD_LIBRARY_PATH=${{ASCEND_TOOLKIT_HOME}}/lib64:${{ASCEND_TOOLKIT_HOME}}/lib64/plugin/opskernel:${{ASCEND_TOOLKIT_HOME}}/lib64/plugin/nnengine:${{ASCEND_TOOLKIT_HOME}}/opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/$(uname -m):${{LD_LIBRARY_PATH}}
export LD_LIBRARY_PATH=${{ASCEND_TOOLKIT_HOME}}/tools/aml/lib64:${{ASCEND_TOOLKIT_HOME}}/tools/aml/lib64/plugin:${{LD_LIBRARY_PATH}}
export PYTHONPATH=${{ASCEND_TOOLKIT_HOME}}/python/site-packages:${{ASCEND_TOOLKIT_HOME}}/opp/built-in/op_impl/ai_core/tbe:${{PYTHONPATH}}
export PATH=${{ASCEND_TOOLKIT_HOME}}/bin:${{ASCEND_TOOLKIT_HOME}}/compiler/ccec_compiler/bin:${{ASCEND_TOOLKIT_HOME}}/tools/ccec_compiler/bin:${{PATH}}
export ASCEND_AICPU_PATH=${{ASCEND_TOOLKIT_HOME}}
export ASCEND_OPP_PATH=${{ASCEND_TOOLKIT_HOME}}/opp
export TOOLCHAIN_HOME=${{ASCEND_TOOLKIT_HOME}}/toolkit
export ASCEND_HOME_PATH=${{ASCEND_TOOLKIT_HOME}}
"""

COMPAT_ENV = """# CANN toolkit environment, compatibility path ({note})
. @INSTALL_PATH@/{home}/set_env.sh
"""

BISHENG_ENV = """# AscendNPU IR (Bisheng) environment ({note})
export PATH=@INSTALL_PATH@/{home}/share/info/ascendnpu-ir/bin:${{PATH}}
"""

RUNTIME_ENV = """# CANN {form} environment ({note})
export ASCEND_HOME_PATH=@INSTALL_PATH@/{form}/latest
export ASCEND_OPP_PATH=${{ASCEND_HOME_PATH}}/opp
export ASCEND_AICPU_PATH=${{ASCEND_HOME_PATH}}
export LD_LIBRARY_PATH=${{ASCEND_HOME_PATH}}/lib64:${{ASCEND_HOME_PATH}}/lib64/plugin/opskernel:${{ASCEND_HOME_PATH}}/lib64/plugin/nnengine:${{LD_LIBRARY_PATH}}
export PYTHONPATH=${{ASCEND_HOME_PATH}}/python/site-packages:${{PYTHONPATH}}
"""

NNAL_ENV = """# NNAL/ATB environment ({note}); accepts --cxx_abi=0|1
atb_abi=""
for atb_arg in "$@"; do
    case "$atb_arg" in --cxx_abi=0) atb_abi=0 ;; --cxx_abi=1) atb_abi=1 ;; esac
done
if [ -z "$atb_abi" ]; then
    case "$(python3 -c 'import torch; print(torch.compiled_with_cxx11_abi())' 2>/dev/null)" in
        False) atb_abi=0 ;;
        *) atb_abi=1 ;;
    esac
fi
export ATB_HOME_PATH=@INSTALL_PATH@/nnal/atb/latest/atb/cxx_abi_${{atb_abi}}
export ASDOPS_HOME_PATH=${{ATB_HOME_PATH}}
export LD_LIBRARY_PATH=${{ATB_HOME_PATH}}/lib:${{ATB_HOME_PATH}}/examples:${{ATB_HOME_PATH}}/tests/atbopstest:${{LD_LIBRARY_PATH}}
export PATH=${{ATB_HOME_PATH}}/bin:${{PATH}}
export ATB_OPSRUNNER_KERNEL_CACHE_TYPE=3
export ATB_RUNNER_POOL_SIZE=64
unset atb_abi atb_arg
"""

MINDIE_ENV = """# MindIE environment ({note})
export MINDIE_HOME=@INSTALL_PATH@/mindie/latest
export MIES_INSTALL_PATH=${{MINDIE_HOME}}/mindie-service
export MINDIE_LLM_HOME_PATH=${{MINDIE_HOME}}/mindie-llm
export PATH=${{MIES_INSTALL_PATH}}/bin:${{PATH}}
export LD_LIBRARY_PATH=${{MIES_INSTALL_PATH}}/lib:${{MIES_INSTALL_PATH}}/lib/grpc:${{MINDIE_LLM_HOME_PATH}}/lib:${{LD_LIBRARY_PATH}}
"""

# Extracted, not installed: it finds its own folder (bash), and torch's and torch_npu's without importing them.
ATB_MODELS_ENV = """# ATB models environment ({note})
export ATB_SPEED_HOME_PATH=$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)
atb_libs=$(python3 -c 'import importlib.util as u, os; print(":".join(os.path.join(u.find_spec(m).submodule_search_locations[0], "lib") for m in ("torch", "torch_npu") if u.find_spec(m)))' 2>/dev/null)
export LD_LIBRARY_PATH=${{ATB_SPEED_HOME_PATH}}/lib:${{atb_libs}}:${{LD_LIBRARY_PATH}}
export PYTHONPATH=${{ATB_SPEED_HOME_PATH}}:${{PYTHONPATH}}
unset atb_libs
"""

# Folders real CANN has and real torch_npu or set_env.sh name (each gets a small file: tar has no empty folders)
TOOLKIT_DIRS = ("runtime", "compiler", "compiler/ccec_compiler/bin", "toolkit", "lib64/plugin/opskernel",
                "lib64/plugin/nnengine", "opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/{arch}",
                "tools/aml/lib64/plugin", "tools/ccec_compiler/bin")


def _marked(home: str, dirs: Iterable[str], arch: str) -> Dict[str, bytes]:
    return {f"{home}/{d.format(arch=arch)}/standin.txt": f"{STANDIN_NOTE}\n".encode() for d in dirs}


def _libraries(home: str, libs: Mapping[str, bytes]) -> Dict[str, bytes]:
    return {f"{home}/{name}": data for name, data in libs.items()}


def toolkit_files(home: str, version: str, arch: str, fill: int, seed: str, elf: Optional[bool]) -> Dict[str, bytes]:
    """What the toolkit installs under its home (its set_env.sh apart)."""
    libs = elflibs.toolkit_libraries(arch, elflibs.use_elf(arch, elf))
    return {
        f"{home}/bin/atc": f"#!/bin/sh\necho 'ATC {version} ({STANDIN_NOTE})'\n".encode(),
        **_libraries(f"{home}/lib64", libs),
        **_marked(home, TOOLKIT_DIRS, arch),
        f"{home}/python/site-packages/ascend_standin/__init__.py": simple_module(version),
        f"{home}/opp/version.info": f"Version={version}\n".encode(),
        f"{home}/{arch}-linux/ascend_toolkit_install.info": f"version={version}\narch={arch}\n".encode(),
        f"{home}/share/standin-filler.bin": filler(fill, f"toolkit{version}{arch}{seed}"),
    }


def make_toolkit(dest: Path, version: str, arch: str, fill: int, seed: str = "", elf: Optional[bool] = None) -> Path:
    """The toolkit: `<P>/ascend-toolkit/<v>` up to 8.3, `<P>/cann-<v>` from 8.5 (with `ascend-toolkit/latest`
    and `ascend-toolkit/set_env.sh` as the compatibility path, and the Bisheng set_env.sh)."""
    home = toolkit_home(version)
    files = toolkit_files(home, version, arch, fill, seed, elf)
    if home.startswith("cann-"):
        templates = [f"{home}/set_env.sh", "ascend-toolkit/set_env.sh", f"{home}/share/info/ascendnpu-ir/bin/set_env.sh"]
        files[f"{templates[0]}.in"] = TOOLKIT_ENV.format(note=STANDIN_NOTE, home=f"@INSTALL_PATH@/{home}").encode()
        files[f"{templates[1]}.in"] = COMPAT_ENV.format(note=STANDIN_NOTE, home=home).encode()
        files[f"{templates[2]}.in"] = BISHENG_ENV.format(note=STANDIN_NOTE, home=home).encode()
    else:
        templates = ["ascend-toolkit/set_env.sh"]
        files[f"{templates[0]}.in"] = TOOLKIT_ENV.format(note=STANDIN_NOTE, home="@INSTALL_PATH@/ascend-toolkit/latest").encode()
    name = f"Ascend-cann-toolkit_{version}_linux-{arch}.run"
    return make_run(dest / name, component="toolkit", name="Ascend-cann-toolkit", version=version, arch=arch,
                    files=files, dirs=[home, "ascend-toolkit/set_env.sh"], templates=templates, home=home)


PIP_HOME = '$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)'     # the folder of the sourced set_env.sh


def make_cann_wheels(dest: Path, version: str, chip: str, arch: str, fill: int, seed: str = "",
                     elf: Optional[bool] = None) -> List[Path]:
    """CANN as Huawei's index ships it from 8.5 (`pip install ascend-cann-toolkit==<v>
    ascend-cann-<chip>-ops==<v>`): the toolkit's tree in `site-packages/ascend/cann-<v>/` with a
    set_env.sh that finds its own folder, and the chip's ops onto it."""
    home = f"ascend/cann-{version}"
    files = toolkit_files(home, version, arch, fill, seed, elf)
    files[f"{home}/set_env.sh"] = TOOLKIT_ENV.format(note=STANDIN_NOTE, home=PIP_HOME).encode()
    kernel_dir = f"{home}/opp/built-in/op_impl/ai_core/tbe/kernel/{chip}"
    ops = {f"{kernel_dir}/kernel_info.json": f'{{"chip": "{chip}", "version": "{version}"}}\n'.encode(),
           f"{kernel_dir}/standin-filler.bin": filler(fill, f"ops{chip}{version}{arch}{seed}")}
    tags = ("py3", "none", [f"manylinux_2_17_{arch}"])
    return [make_wheel(dest, "ascend_cann_toolkit", version, tags, files),
            make_wheel(dest, f"ascend_cann_{chip.lower()}_ops", version, tags, ops,
                       requires=[f"ascend-cann-toolkit=={version}"])]


def make_runtime(dest: Path, form: str, version: str, arch: str, fill: int, seed: str = "", elf: Optional[bool] = None) -> Path:
    """The runtime-only CANN packages (up to 8.3): `nnrt` (inference) and `nnae` (training engine),
    installed under `<path>/<form>/<version>` with their own set_env.sh; smaller than the toolkit
    as the real ones are (a quarter / half of its filler)."""
    home = f"{form}/{version}"
    libs = elflibs.toolkit_libraries(arch, elflibs.use_elf(arch, elf))
    files = {
        **_libraries(f"{home}/lib64", libs),
        **_marked(home, ("compiler", "lib64/plugin/opskernel", "lib64/plugin/nnengine"), arch),
        f"{home}/runtime/version.info": f"Version={version}\n".encode(),
        f"{home}/opp/version.info": f"Version={version}\n".encode(),
        f"{home}/{arch}-linux/ascend_{form}_install.info": f"version={version}\narch={arch}\n".encode(),
        f"{home}/share/standin-filler.bin": filler(fill // (4 if form == "nnrt" else 2), f"{form}{version}{arch}{seed}"),
        f"{form}/set_env.sh.in": RUNTIME_ENV.format(form=form, note=STANDIN_NOTE).encode(),
    }
    name = f"Ascend-cann-{form}_{version}_linux-{arch}.run"
    return make_run(dest / name, component=form, name=f"Ascend-cann-{form}", version=version, arch=arch,
                    files=files, dirs=[home, f"{form}/set_env.sh"], templates=[f"{form}/set_env.sh"], home=home)


def chip_package_name(kind: str, chip: str, version: str, arch: str) -> str:
    if kind == "ops":
        return f"Ascend-cann-{chip}-ops_{version}_linux-{arch}.run"
    if chip.upper() == "A3":
        return f"Atlas-A3-cann-kernels_{version}_linux-{arch}.run"
    return f"Ascend-cann-kernels-{chip}_{version}_linux-{arch}.run"


def make_chip_package(dest: Path, kind: str, chip: str, version: str, arch: str, fill: int, seed: str = "") -> Path:
    """Kernels/ops: laid out for `ascend-toolkit/<v>`; the installer moves them onto the CANN home it
    finds (`cann-<v>`, `ascend-toolkit/<v>`, or the nnrt/nnae one --type names)."""
    home = f"ascend-toolkit/{version}"
    kernel_dir = f"{home}/opp/built-in/op_impl/ai_core/tbe/kernel/{chip}"
    files = {
        f"{kernel_dir}/kernel_info.json": f'{{"chip": "{chip}", "version": "{version}"}}\n'.encode(),
        f"{kernel_dir}/standin-filler.bin": filler(fill, f"{kind}{chip}{version}{arch}{seed}"),
    }
    name = chip_package_name(kind, chip, version, arch)
    return make_run(dest / name, component=kind, name=name.split("_")[0], version=version, arch=arch,
                    files=files, dirs=[kernel_dir], home=home)


def make_nnal(dest: Path, version: str, arch: str, fill: int, seed: str = "", elf: Optional[bool] = None) -> Path:
    """NNAL: ATB for both C++ ABIs (libatb.so and liblcal.so as real ELF files), `nnal/atb/latest`."""
    home = f"nnal/atb/{version}"
    use = elflibs.use_elf(arch, elf)
    files = {f"{home}/atb/cxx_abi_{abi}/lib/{lib}": elflibs.library(arch, lib, use)
             for abi in (0, 1) for lib in elflibs.NNAL_LIBRARIES}
    files.update(_marked(f"{home}/atb", [f"cxx_abi_{abi}/bin" for abi in (0, 1)], arch))
    files[f"{home}/share/standin-filler.bin"] = filler(fill, f"nnal{version}{arch}{seed}")
    files["nnal/atb/set_env.sh.in"] = NNAL_ENV.format(note=STANDIN_NOTE).encode()
    name = f"Ascend-cann-nnal_{version}_linux-{arch}.run"
    return make_run(dest / name, component="nnal", name="Ascend-cann-nnal", version=version, arch=arch,
                    files=files, dirs=[home, "nnal/atb/set_env.sh"], templates=["nnal/atb/set_env.sh"], home=home)


def bundled_atb(home: str, version: str) -> Tuple[str, bytes]:
    """MindIE 2.1+ (ABI in the file name) bundles the ATB models: their atb_llm wheel."""
    name, data = build_wheel("atb_llm", str(Version(version)), ("py3", "none", ["any"]),
                             {"atb_llm/__init__.py": simple_module(version)})
    return f"{home}/wheels/{name}", data


def make_mindie(dest: Path, version: str, arch: str, abi: Optional[int], fill: int, seed: str = "") -> Path:
    """MindIE .run: the real layout `mindie/<v>/mindie-service/{bin,lib,lib/grpc}`, `mindie/<v>/mindie-llm/`."""
    home = f"mindie/{version}"
    wheel_name, wheel_bytes = build_wheel("mindie_llm", str(Version(version)), ("py3", "none", ["any"]),
                                          {"mindie_llm/__init__.py": simple_module(version)})
    files = {
        f"{home}/mindie-service/bin/mindieservice_daemon": f"#!/bin/sh\necho 'MindIE {version} ({STANDIN_NOTE})'\n".encode(),
        **_marked(home, ("mindie-service/lib", "mindie-service/lib/grpc", "mindie-llm/lib"), arch),
        f"{home}/version.info": f"version={version}\n".encode(),
        f"{home}/wheels/{wheel_name}": wheel_bytes,
        **({} if abi is None else dict([bundled_atb(home, version)])),
        f"{home}/share/standin-filler.bin": filler(fill, f"mindie{version}{arch}{seed}"),
        "mindie/set_env.sh.in": MINDIE_ENV.format(note=STANDIN_NOTE).encode(),
    }
    suffix = f"_abi{abi}" if abi is not None else ""
    name = f"Ascend-mindie_{version}_linux-{arch}{suffix}.run"
    return make_run(dest / name, component="mindie", name="Ascend-mindie", version=version, arch=arch,
                    files=files, dirs=[home, "mindie/set_env.sh"], templates=["mindie/set_env.sh"], home=home)


def make_mindie_wheels(dest: Path, version: str, arch: str, python: str, fill: int, seed: str = "") -> List[Path]:
    """MindIE 3.x as wheels: mindie_llm (with the service's placeholder), mindie_sd, mindie_motor."""
    tag = py_tag(python)
    paths = []
    for name in ("mindie_llm", "mindie_sd", "mindie_motor"):
        files = {f"{name}/__init__.py": simple_module(version),
                 f"{name}/standin-filler.bin": filler(fill if name == "mindie_llm" else 64, f"{name}{version}{arch}{seed}")}
        paths.append(make_wheel(dest, name, str(Version(version)), (tag, tag, wheel_platforms(arch, False)), files))
    return paths


def atb_wheel(version: str, arch: str, python: str, fill: int, seed: str = "") -> Tuple[str, bytes]:
    tag = py_tag(python)
    files = {"atb_llm/__init__.py": simple_module(version),
             "atb_llm/standin-filler.bin": filler(fill, f"atb{version}{arch}{seed}")}
    return build_wheel("atb_llm", str(Version(version)), (tag, tag, wheel_platforms(arch, False)), files)


def make_atb_wheel(dest: Path, version: str, arch: str, python: str, fill: int, seed: str = "") -> Path:
    name, data = atb_wheel(version, arch, python, fill, seed)
    path = Path(dest) / name
    path.write_bytes(data)
    return path


def make_atb_tarball(dest: Path, version: str, arch: str, python: str, torch: str, abi: int, fill: int, seed: str = "",
                     requirements: str = "# atb-models requirements (stand-in: none)\n") -> Path:
    """The atb-models tarball: an atb_llm wheel, requirements/, examples/, lib/ and set_env.sh (the real layout)."""
    wheel_name, wheel_bytes = atb_wheel(version, arch, python, fill, seed)
    entries = {wheel_name: wheel_bytes, "set_env.sh": ATB_MODELS_ENV.format(note=STANDIN_NOTE).encode(),
               "lib/standin.txt": f"{STANDIN_NOTE}\n".encode()}
    entries["requirements/requirements.txt"] = requirements.encode()
    entries["examples/run_pa.py"] = f'print("{STANDIN_NOTE}")\n'.encode()
    tar_arch = "x86" if arch == "x86_64" else arch  # the real names say `x86`
    name = f"Ascend-mindie-atb-models_{version}_linux-{tar_arch}_torch{torch}-abi{abi}.tar.gz"
    path = Path(dest) / name
    path.write_bytes(_targz(entries))
    return path


def make_torch(dest: Path, version: str, arch: str, python: str, abi: int, fill: int, seed: str = "",
               elf: Optional[bool] = None) -> Path:
    """torch, with a `torch/lib/libc10.so` whose bytes say its C++ ABI as the real one's do."""
    tag = py_tag(python)
    full = f"{version}+cpu" if arch == "x86_64" else version
    files = {"torch/__init__.py": torch_init(full, abi),
             "torch/lib/libc10.so": elflibs.libc10(arch, abi, elflibs.use_elf(arch, elf)),
             "torch/standin-filler.bin": filler(fill, f"torch{version}{arch}{seed}")}
    return make_wheel(dest, "torch", full, (tag, tag, wheel_platforms(arch, arch != "x86_64")), files)


def make_torch_npu(dest: Path, version: str, torch: str, arch: str, python: str, fill: int, seed: str = "") -> Path:
    tag = py_tag(python)
    files = {"torch_npu/__init__.py": TORCH_NPU_INIT.format(note=STANDIN_NOTE, version=version).encode(),
             "torch_npu/standin-filler.bin": filler(fill, f"torch_npu{version}{arch}{seed}")}
    return make_wheel(dest, "torch_npu", version, (tag, tag, wheel_platforms(arch, True)), files,
                      requires=[f"torch=={torch}"])


MINDSPORE_CHECKER = '''"""{note}: what MindSpore's run_check says of CANN"""


class AscendEnvChecker:
    def __init__(self, library_path):
        self.version = {accepted!r}
'''


def make_mindspore(dest: Path, version: str, cann: str, arch: str, python: str, fill: int, seed: str = "") -> Path:
    """A MindSpore wheel as the real one is made: its run_check lists the CANN release (X.Y) it
    accepts and its custom operators name the CANN they were compiled with."""
    tag = py_tag(python)
    files = {"mindspore/__init__.py": simple_module(version),
             "mindspore/run_check/_check_version.py": MINDSPORE_CHECKER.format(
                 note=STANDIN_NOTE, accepted=[".".join(cann.split(".")[:2])]).encode(),
             "mindspore/lib/plugin/ascend/custom_ascendc_910b/version.info": f"custom_opp_compiler_version={cann}\n".encode(),
             "mindspore/standin-filler.bin": filler(fill, f"mindspore{version}{arch}{seed}")}
    return make_wheel(dest, "mindspore", version, (tag, tag, wheel_platforms(arch, False)), files)


VLLM_SETUP = '''"""{note}: vLLM's setup.py as it decides: its dependencies and whether it compiles
follow VLLM_TARGET_DEVICE; `empty` compiles nothing and requires requirements/common.txt."""
import os

from setuptools import setup


def requirements(name):
    found = []
    for line in open(os.path.join("requirements", name)):
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += requirements(line[3:].strip())
        elif line:
            found.append(line)
    return found


if os.environ.get("VLLM_TARGET_DEVICE") != "empty":
    raise SystemExit("stand-in vLLM: only VLLM_TARGET_DEVICE=empty builds here (the CUDA build needs nvcc "
                     "and torch {cuda_torch})")
setup(name="vllm", version="{version}+empty", packages=["vllm"], install_requires=requirements("common.txt"),
      entry_points={{"console_scripts": ["vllm = vllm.cli:main"]}})
'''

VLLM_CLI = '''"""{note}"""
import sys

from vllm import __version__


def main():
    if sys.argv[1:] == ["--version"]:
        print(__version__)
        return 0
    print("stand-in vLLM: `vllm serve` is not here", file=sys.stderr)
    return 2
'''


def make_vllm_sdist(dest: Path, version: str) -> Path:
    """vLLM's source distribution as the real one is made: its PKG-INFO lists the CUDA build's
    requirements (torch 2.11.0, nvidia-*), its build-system asks a CUDA torch, and what an `empty`
    build requires is requirements/common.txt (with an `-r`)."""
    cuda_torch = "2.11.0"
    top = f"vllm-{version}"
    info = (f"Metadata-Version: 2.4\nName: vllm\nVersion: {version}\nSummary: {STANDIN_NOTE}\n"
            f"Requires-Python: >=3.10,<3.15\nDynamic: requires-dist\nRequires-Dist: regex\n"
            f"Requires-Dist: torch=={cuda_torch}\nRequires-Dist: nvidia-cudnn-frontend>=1.19.1\n")
    pyproject = ('[build-system]\nrequires = ["setuptools>=61", "wheel", "cmake>=3.26.1", "ninja", '
                 f'"torch == {cuda_torch}"]\nbuild-backend = "setuptools.build_meta"\n')
    files = {f"{top}/PKG-INFO": info.encode(), f"{top}/pyproject.toml": pyproject.encode(),
             f"{top}/setup.py": VLLM_SETUP.format(note=STANDIN_NOTE, version=version, cuda_torch=cuda_torch).encode(),
             f"{top}/requirements/common.txt": b"regex # Replace re for higher-performance regex matching\n"
                                               b"-r common-more.txt\n",
             f"{top}/requirements/common-more.txt": b"ninja  # Required for xgrammar\n",
             f"{top}/requirements/cuda.txt": f"-r common.txt\ntorch=={cuda_torch}\n".encode(),
             f"{top}/vllm/__init__.py": f'"""{STANDIN_NOTE}"""\n__version__ = "{version}+empty"\n'.encode(),
             f"{top}/vllm/cli.py": VLLM_CLI.format(note=STANDIN_NOTE).encode()}
    path = Path(dest) / f"{top}.tar.gz"
    path.write_bytes(_targz(files))
    return path


VLLM_ASCEND_SETUP = '''"""{note}: vllm-ascend's setup.py as it decides: with COMPILE_CUSTOM_KERNELS=1 it
compiles its kernels with CANN for SOC_VERSION (no NPU to detect), against the installed torch_npu."""
import os

from setuptools import setup

if os.environ.get("COMPILE_CUSTOM_KERNELS") == "1":
    soc = os.environ.get("SOC_VERSION")
    if not soc:
        raise SystemExit("Please set the 'SOC_VERSION' environment variable to specify the target chip")
    if not os.environ.get("ASCEND_HOME_PATH"):
        raise SystemExit("ASCEND_HOME_PATH is not set: source CANN's set_env.sh")
    import torch_npu  # noqa: F401  (the kernels build against it)
    with open(os.path.join("vllm_ascend", "_build_info.py"), "w") as info:
        info.write(f"SOC_VERSION = {{soc!r}}\\n")
setup(name="vllm_ascend", version="{version}", packages=["vllm_ascend"],
      install_requires=[line.strip() for line in open("requirements.txt") if line.strip()])
'''


def make_vllm_ascend_sdist(dest: Path, fam: "Family") -> Path:
    """vllm-ascend's source distribution: its requirements in requirements.txt (PKG-INFO says
    they are dynamic), built with COMPILE_CUSTOM_KERNELS and SOC_VERSION against torch_npu."""
    top = f"vllm_ascend-{fam.vllm_ascend}"
    info = (f"Metadata-Version: 2.4\nName: vllm_ascend\nVersion: {fam.vllm_ascend}\nSummary: {STANDIN_NOTE}\n"
            "Dynamic: requires-dist\n")
    pyproject = ('[build-system]\nrequires = ["setuptools>=61", "wheel", "cmake>=3.26", '
                 f'"torch=={fam.torch}", "torch-npu=={fam.torch_npu}"]\nbuild-backend = "setuptools.build_meta"\n')
    requirements = f"torch=={fam.torch}\ntorch-npu=={fam.torch_npu}\ntriton-ascend=={fam.triton_ascend}\nregex\n"
    init = f'"""{STANDIN_NOTE}"""\n__version__ = "{fam.vllm_ascend}"\n'
    files = {f"{top}/PKG-INFO": info.encode(), f"{top}/pyproject.toml": pyproject.encode(),
             f"{top}/setup.py": VLLM_ASCEND_SETUP.format(note=STANDIN_NOTE, version=fam.vllm_ascend).encode(),
             f"{top}/requirements.txt": requirements.encode(), f"{top}/vllm_ascend/__init__.py": init.encode()}
    path = Path(dest) / f"{top}.tar.gz"
    path.write_bytes(_targz(files))
    return path


ARCTIC_SETUP = '''"""{note}: arctic-inference's setup.py as it decides: it imports torch (built without
isolation, against the image's torch: its build-system pins another) and records what it was built with."""
import torch
from setuptools import setup

with open("arctic_inference/_build_info.py", "w") as out:
    out.write("TORCH = %r\\n" % torch.__version__)
setup(name="arctic_inference", version="{version}", packages=["arctic_inference"])
'''


def make_sdist_only(dest: Path, version: str, torch_pin: str) -> Path:
    """arctic-inference as vllm-ascend 0.23.0 requires it: no wheel at all, only its sdist, whose
    PKG-INFO states its (empty) requirements and whose build-system pins a torch (2.7.0) other
    than the image's."""
    top = f"arctic_inference-{version}"
    info = f"Metadata-Version: 2.4\nName: arctic_inference\nVersion: {version}\nSummary: {STANDIN_NOTE}\n"
    pyproject = (f'[build-system]\nrequires = ["setuptools>=61.0", "wheel", "ninja", "torch == {torch_pin}"]\n'
                 'build-backend = "setuptools.build_meta"\n')
    files = {f"{top}/PKG-INFO": info.encode(), f"{top}/pyproject.toml": pyproject.encode(),
             f"{top}/setup.py": ARCTIC_SETUP.format(note=STANDIN_NOTE, version=version).encode(),
             f"{top}/arctic_inference/__init__.py": f'"""{STANDIN_NOTE}"""\n__version__ = "{version}"\n'.encode()}
    path = Path(dest) / f"{top}.tar.gz"
    path.write_bytes(_targz(files))
    return path


# triton-ascend's module is `triton`, which torch imports as soon as it is there (torch._dynamo,
# _inductor: dozens of its submodules). The stand-in compiles nothing: its import fails as a missing
# triton does, so torch and vLLM take the no-triton path; the distribution is installed all the same.
def triton_files(version: str) -> Dict[str, bytes]:
    return {"triton/__init__.py": simple_module(version) + b'raise ImportError("stand-in triton-ascend: no kernel '
                                                           b'compiler here (torch and vLLM run without triton)")\n'}


def make_vllm_stack(dest: Path, fam: "Family", arch: str, python: str, fill: int, seed: str = "") -> List[Path]:
    """vllm-ascend (a wheel that needs CANN's environment to import, like torch_npu), vLLM's sdist,
    triton-ascend, arctic-inference (an sdist only) and the pure wheels those need (stand-ins of
    regex, ninja, cmake)."""
    tag = py_tag(python)
    init = TORCH_NPU_INIT.replace("import torch  # noqa: F401  (the real torch_npu imports torch first)",
                                  "import torch_npu  # noqa: F401  (vllm_ascend imports torch_npu first)")
    files = {"vllm_ascend/__init__.py": init.format(note=STANDIN_NOTE, version=fam.vllm_ascend).encode(),
             "vllm_ascend/standin-filler.bin": filler(fill, f"vllm_ascend{fam.vllm_ascend}{arch}{seed}")}
    paths = [make_wheel(dest, "vllm_ascend", fam.vllm_ascend, (tag, tag, [f"manylinux_2_34_{arch}"]), files,
                        requires=[f"torch=={fam.torch}", f"torch-npu=={fam.torch_npu}",
                                  f"triton-ascend=={fam.triton_ascend}", "regex", "arctic-inference==0.1.1"]),
             make_sdist_only(dest, "0.1.1", "2.7.0"),
             make_vllm_sdist(dest, ".".join(fam.vllm_ascend.split(".")[:3]).split("rc")[0]),
             make_wheel(dest, "triton_ascend", fam.triton_ascend, (tag, tag, wheel_platforms(arch, True)),
                        triton_files(fam.triton_ascend))]
    for name, version in (("regex", "2026.1.1"), ("ninja", "1.13.0"), ("cmake", "4.2.0")):
        paths.append(make_wheel(dest, name, version, ("py3", "none", ["any"]), {f"{name}/__init__.py": simple_module(version)}))
    return paths


def generate(
    dest: Path,
    *,
    cann: str = "8.5.0",
    arch: str = "x86_64",
    chip: str = "910b",
    python: str = "3.11",
    fill: int = 1 << 20,
    seed: str = "",
    signed_by: Optional["TestCA"] = None,
    elf: Optional[bool] = None,
    more: Sequence[str] = (),
) -> List[Path]:
    """Write a full stand-in set (toolkit, chip kernels/ops, NNAL, torch, torch_npu, MindIE,
    atb-models) into `dest` and return the paths in install order. With `signed_by`, the CANN
    packages are official signed zips. `elf`: the libraries as ELF files for `arch` (True: or
    fail), as text placeholders (False), or ELF when a compiler for `arch` is here (None)."""
    fam = family(cann)
    abi = fam.abi_for(arch)
    elf = elflibs.use_elf(arch, elf)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cann = (make_cann_wheels(dest, fam.cann, chip, arch, fill, seed, elf) if fam.runtime == "pip" else
            [make_toolkit(dest, fam.cann, arch, fill, seed, elf) if fam.runtime == "toolkit"
             else make_runtime(dest, fam.runtime, fam.cann, arch, fill, seed, elf),
             make_chip_package(dest, fam.chip_package, chip, fam.cann, arch, fill, seed)])
    paths = [
        *cann,
        make_nnal(dest, fam.cann, arch, fill, seed, elf),
        make_torch(dest, fam.torch, arch, python, abi, fill, seed, elf),
        make_torch_npu(dest, fam.torch_npu, fam.torch, arch, python, fill, seed),
    ]
    if fam.mindie_form == "wheels":
        paths += make_mindie_wheels(dest, fam.mindie, arch, python, fill, seed)
    else:
        paths.append(make_mindie(dest, fam.mindie, arch, abi if fam.mindie_abi_in_name else None, fill, seed))
    if fam.atb_models == "tarball":
        paths.append(make_atb_tarball(dest, fam.mindie, arch, python, fam.torch, abi, fill, seed))
    elif fam.atb_models == "wheel":
        paths.append(make_atb_wheel(dest, fam.mindie, arch, python, fill, seed))
    if fam.vllm_ascend:
        paths += make_vllm_stack(dest, fam, arch, python, fill, seed)
    if "mindspore" in more:           # the family's stand-ins of a stack not in every demo
        if not fam.mindspore:
            raise ConfigError(f"the demo CANN family {cann} has no MindSpore release",
                              fix=f"use one of: {', '.join(n for n, f in families().items() if f.mindspore)}")
        paths.append(make_mindspore(dest, fam.mindspore, fam.cann, arch, python, fill, seed))
    if signed_by and fam.runtime == "pip":
        raise ConfigError(f"the demo family {cann} installs CANN with pip: Huawei signs the .run packages, not these wheels",
                          fix="leave out --signed, or use another --cann family")
    if signed_by:
        paths[:3] = [signed_zip(p, signed_by) for p in paths[:3]]
    vouch_for_official_names(paths)
    return paths


def vouch_for_official_names(paths: Sequence[Path]) -> None:
    """`<file>.sha256` next to each stand-in that carries a name Huawei publishes (with other
    bytes): the user's word on a file's bytes, so `check` does not take it for a damaged download."""
    for path in paths:
        if published.lookup(path.name):
            Path(f"{path}.sha256").write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")


# -- official signed zips (ascend-reference.md §10), signed by a CA made for the purpose ------------

CA_CONFIG = """[ca]
default_ca = ca_default
[ca_default]
database = {folder}/index.txt
crlnumber = {folder}/crlnumber
default_md = sha256
default_crl_days = 3650
"""


@dataclass(frozen=True)
class TestCA:
    """A root certificate (`root.pem`), a signer it issued, and the CRL the root signs."""

    folder: Path

    @property
    def root(self) -> Path:
        return self.folder / "root.pem"

    @property
    def crl(self) -> Path:
        return self.folder / "root.crl"

    def _openssl(self, *args: str) -> None:
        done = subprocess.run(["openssl", *args], cwd=self.folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigError(f"openssl {args[0]} failed: {done.stderr.strip()}", fix="install openssl")

    def gencrl(self) -> None:
        self._openssl("ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "root.key", "-cert", "root.pem", "-out", "crl.pem")
        self._openssl("crl", "-in", "crl.pem", "-outform", "DER", "-out", "root.crl")

    def revoke_signer(self) -> None:
        self._openssl("ca", "-config", "ca.cnf", "-revoke", "signer.pem", "-keyfile", "root.key", "-cert", "root.pem")
        self.gencrl()

    def sign(self, path: Path) -> Path:
        """A detached DER CMS signature `<path>.cms`, as Huawei's are."""
        cms = Path(f"{path}.cms")
        self._openssl("cms", "-sign", "-binary", "-md", "sha256", "-in", str(Path(path).resolve()), "-signer", "signer.pem",
                      "-inkey", "signer.key", "-outform", "DER", "-out", str(cms.resolve()))
        return cms


def make_ca(folder: Path, name: str = "ascend-build test root") -> TestCA:
    """A new root CA and signer in `folder` (with openssl)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca = TestCA(folder.resolve())
    (folder / "ca.cnf").write_text(CA_CONFIG.format(folder=ca.folder))
    (folder / "index.txt").write_text("")
    (folder / "crlnumber").write_text("01\n")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca._openssl("req", "-x509", *ec, "-keyout", "root.key", "-out", "root.pem", "-days", "3650", "-subj", f"/CN={name}",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ca._openssl("req", *ec, "-keyout", "signer.key", "-out", "signer.csr", "-subj", f"/CN={name} signer")
    ca._openssl("x509", "-req", "-in", "signer.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial",
                "-out", "signer.pem", "-days", "3650")
    ca.gencrl()
    return ca


def signed_zip(run: Path, ca: TestCA) -> Path:
    """The official form of a CANN package: `<name>.zip` holding the .run, `<run>.cms` and the CRL.
    The .run is replaced by the zip."""
    run = Path(run)
    cms = ca.sign(run)
    path = run.with_suffix(".zip")
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(run, run.name, compress_type=zipfile.ZIP_STORED)
        zf.write(cms, cms.name)
        zf.write(ca.crl, "ascend.crl")
    run.unlink()
    cms.unlink()
    return path
