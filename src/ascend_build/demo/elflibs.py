"""Stand-in shared libraries: real ELF files for the target arch, compiled from a C file written
here, that define the symbols the real torch_npu and vllm_ascend take from CANN (torch_npu_symbols.json,
made by scripts/torch-npu-symbols.py from the real wheels: torch_npu 2.6.0.post5 and 2.10.0.post4,
vllm_ascend 0.23.0). With them the real wheels judge an image's environment. Every function
returns 0; data objects are zeroed.

Without a C compiler for the target arch the libraries are text placeholders (said once per
arch); `require=True` makes that an error instead. Compiled libraries are cached by the hash of
their source under ~/.cache/ascend-build/standin-libs.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Dict, Iterable, Optional

from ..platforms import host_arch
from ..errors import ConfigError

CROSS_PACKAGE = {"aarch64": "gcc-aarch64-linux-gnu", "x86_64": "gcc-x86-64-linux-gnu"}
CFLAGS = ("-shared", "-fPIC", "-O0", "-nostdlib", "-s")
OBJECT_SIZE = 4096          # zeroed bytes behind each data object (in .bss: no file size)
NNAL_LIBRARIES = ("libatb.so", "liblcal.so")     # in NNAL's atb/cxx_abi_N/lib, not the toolkit's lib64
# C++ ABI marker in the stand-in torch's libc10.so: a c10 symbol with std::string in its mangled name
C10_SYMBOL = {1: "_ZN3c106detail13torchCheckFailEPKcS2_jRKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
              0: "_ZN3c106detail13torchCheckFailEPKcS2_jRKSs"}
_warned = set()


@lru_cache(maxsize=1)
def symbol_data() -> dict:
    return json.loads(resources.files(__package__).joinpath("torch_npu_symbols.json").read_text())


def cann_libraries() -> Dict[str, dict]:
    """soname -> {"loaded": "needed"|"dlopen", "functions": [...], "objects": [...]}."""
    return symbol_data()["libraries"]


def compiler(arch: str) -> Optional[str]:
    """The C compiler that makes `arch` code here: `gcc` for the host's arch, else the Debian cross gcc."""
    names = ["gcc", "cc"] if arch == host_arch() else [f"{arch}-linux-gnu-gcc"]
    return next((found for found in map(shutil.which, names) if found), None)


def use_elf(arch: str, require: Optional[bool]) -> bool:
    """Whether to compile: `require` True (error without a compiler), False (never), None (when one exists)."""
    if require is False:
        return False
    if compiler(arch):
        return True
    install = f"apt-get install {CROSS_PACKAGE.get(arch, 'gcc')}" if arch != host_arch() else "apt-get install gcc"
    if require:
        raise ConfigError(f"no C compiler for {arch} found: the stand-in CANN libraries cannot be built as ELF files",
                          fix=install)
    if arch not in _warned:
        _warned.add(arch)
        warnings.warn(f"no C compiler for {arch}: stand-in CANN libraries are text placeholders ({install} for ELF ones)",
                      stacklevel=3)
    return False


def c_source(soname: str, functions: Iterable[str], objects: Iterable[str] = ()) -> str:
    """A C file defining each name (asm labels keep the mangled C++ names as they are)."""
    lines = [f"/* stand-in {soname} made by ascend-build: every function returns 0 */"]
    for n, name in enumerate(functions):
        lines.append(f'long f{n}(void) __asm__("{name}");\nlong f{n}(void) {{ return 0; }}')
    for n, name in enumerate(objects):
        lines.append(f'__attribute__((aligned(16))) char d{n}[{OBJECT_SIZE}] __asm__("{name}");')
    return "\n".join(lines) + "\n"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ascend-build" / "standin-libs"


def compile_library(arch: str, soname: str, source: str) -> bytes:
    """The shared object `source` makes for `arch` (SONAME `soname`), from the cache when there."""
    cc = compiler(arch)
    if not cc:
        use_elf(arch, True)
    key = hashlib.sha256("\0".join([arch, Path(cc).name, soname, *CFLAGS, source]).encode()).hexdigest()
    cached = cache_dir() / f"{key}.so"
    if cached.is_file():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory(prefix="ascend-build-cc-") as tmp:
        c_file, out = Path(tmp) / "standin.c", Path(tmp) / soname
        c_file.write_text(source)
        done = subprocess.run([cc, *CFLAGS, f"-Wl,-soname,{soname}", "-o", str(out), str(c_file)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigError(f"{Path(cc).name} could not build the stand-in {soname}: {done.stderr.strip()[-500:]}",
                              fix=f"check that {Path(cc).name} works (e.g. compile a hello-world shared library)")
        data = out.read_bytes()
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, cached)
    except OSError:
        pass        # a cache we cannot write only costs time
    return data


def placeholder(soname: str) -> bytes:
    return f"stand-in {soname} made by ascend-build: a placeholder (no C compiler for the target arch)\n".encode()


def library(arch: str, soname: str, elf: bool) -> bytes:
    """One stand-in CANN library with the symbols torch_npu and vllm_ascend take from it."""
    if not elf:
        return placeholder(soname)
    found = cann_libraries().get(soname, {})
    return compile_library(arch, soname, c_source(soname, found.get("functions", ()), found.get("objects", ())))


def toolkit_libraries(arch: str, elf: bool) -> Dict[str, bytes]:
    """soname -> bytes of every CANN library torch_npu or vllm_ascend links or loads that the toolkit holds
    (all but NNAL's, liboptiling.so too: real CANN has it in opp/.../op_tiling/lib/linux/<arch>, lib64 is on every path)."""
    names = sorted(set(cann_libraries()) - set(NNAL_LIBRARIES) | {"libascendcl.so"})
    return {name: library(arch, name, elf) for name in names}


def libc10(arch: str, abi: int, elf: bool) -> bytes:
    """The stand-in torch's `torch/lib/libc10.so`: its bytes contain `__cxx11` exactly when `abi` is 1."""
    if not elf:
        return f"stand-in libc10.so made by ascend-build: {C10_SYMBOL[abi]}\n".encode()
    return compile_library(arch, "libc10.so", c_source("libc10.so", [C10_SYMBOL[abi]]))
