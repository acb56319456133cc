#!/usr/bin/env python3
"""List the CANN libraries a real torch_npu wheel needs, and the symbols it takes from each.

    scripts/torch-npu-symbols.py [-o OUT.json] TORCH_NPU_WHEEL... TORCH_WHEEL...

Reads the ELF files of the wheels with `readelf` (binutils). From the torch_npu wheel(s): the
libraries its ELF files link (DT_NEEDED) and the ones it loads by name (library names in its
strings), the undefined dynamic symbols it imports and the API names it looks up with dlsym.
The torch wheel(s) say which symbols are torch's (defined there) or come from elsewhere (Python,
the C runtime: undefined there too); neither goes to a CANN library. Versioned symbols (glibc,
libstdc++, libgcc) and weak ones are skipped, and so is libmspti (a stand-in of it hangs the
profiler); driver libraries (libascend_hal, libdcmi) are not CANN's.

For each ELF that imports a symbol, the symbol goes to a CANN library that ELF links: the one its
name points to (HINTS) when the ELF links it, else the first in its DT_NEEDED list (so a symbol
may be in two libraries: ELFs linking different sets import it). Names looked up by dlsym go to
the library their name points to.
The result (library -> functions and data objects) is what demo/standins.py compiles into the
stand-in CANN libraries.
"""
import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SYSTEM = re.compile(r"^(libc|libm|libdl|librt|libpthread|libutil|libgcc_s|libstdc\+\+|ld-linux.*|libibverbs)\.so")
NOT_CANN = {"libmspti.so", "libascend_hal.so", "libdcmi.so", "libcust_opapi.so", "libc.so"}
# name -> the library that defines it in CANN (first match wins)
HINTS = [
    (r"^Hccl[A-Z]|^hccl[A-Z]", "libhccl.so"),
    (r"^aclnn[A-Z]|^acl(Create|Destroy)(Tensor|TensorList|Scalar|ScalarList|IntArray|BoolArray|FloatArray|AclOpExecutor)$|^aclGetViewShape|^acl(Rfft1D|Stft)",
     "libopapi.so"),
    (r"^aclprof[A-Z]", "libmsprofiler.so"),
    (r"^aclop|^aclGenGraph|^aclCreateGraphDumpOpt|^aclDestroyGraphDumpOpt|^aclSetCompileopt", "libacl_op_compiler.so"),
    (r"^acltdt", "libacl_tdt_channel.so"),
    (r"^acl[a-zA-Z]*[A-Z]", "libascendcl.so"),
    (r"^_ZN?K?\d*ge\d|^_ZN2ge|^_ZNK2ge", "libge_runner.so"),
    (r"^[mM]stx[A-Z]", "libms_tools_ext.so"),
    (r"^asd[A-Z]", "libasdsip.so"),
    (r"^[lL]cal[A-Z]", "liblcal.so"),
    (r"atb", "libatb.so"),
]
# API names looked up by name (dlsym) rather than linked: only those a hint places
LOOKUP = re.compile(r"^(Hccl|aclnn|aclprof|aclrt|aclsys|aclop|acl|mstx|Mstx|asd|Lcal|lcal)[A-Z][A-Za-z0-9_]*$")
LIBNAME = re.compile(rb"lib(?!rar)[A-Za-z0-9_]+(?:\.so)?")   # a whole string: libopapi, libhccl.so (not libraries)


def hinted(name: str):
    return next((lib for pattern, lib in HINTS if re.search(pattern, name)), None)


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], capture_output=True, text=True, check=True).stdout


def dynamic_symbols(path: Path):
    """(defined names, undefined: name -> 'function'|'object' of the unversioned non-weak ones, names
    undefined with a version: glibc's, libstdc++'s)."""
    defined, undefined, versioned = set(), {}, set()
    for line in readelf("--dyn-syms", str(path)).splitlines():
        fields = line.split()
        if len(fields) < 8 or not fields[0].rstrip(":").isdigit():
            continue
        kind, bind, ndx, name = fields[3], fields[4], fields[6], fields[7]
        if ndx != "UND":
            defined.add(name.split("@")[0])
        elif "@" in name:
            versioned.add(name.split("@")[0])
        elif name and bind == "GLOBAL":
            undefined[name] = "object" if kind in ("OBJECT", "TLS") else "function"
    return defined, undefined, versioned


def needed(path: Path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf("-d", str(path)))


def elf_members(wheel: Path, into: Path):
    """Extract the ELF files of a wheel; yield (member name, path)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if ".so" not in info.filename:
                continue
            with zf.open(info) as member:
                if member.read(4) != b"\x7fELF":
                    continue
            path = Path(zf.extract(info, into))
            yield info.filename, path


def so_name(name: str) -> str:
    return name if name.endswith(".so") else f"{name}.so"


def analyse(wheels):
    subject = [w for w in wheels if not re.match(r"torch-", w.name)]
    providers = [w for w in wheels if re.match(r"torch-", w.name)]
    if not subject or not providers:
        sys.exit("give the torch_npu wheel(s) and the torch wheel(s) they were built for")
    outside, own, own_files, imports, loaded, strings = set(), set(), set(), [], {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        for wheel in providers:
            for member, path in elf_members(wheel, Path(tmp) / wheel.name):
                defined, undefined, versioned = dynamic_symbols(path)
                outside |= defined | set(undefined) | versioned
                own_files.add(Path(member).name)
                path.unlink()
        for wheel in subject:
            for member, path in elf_members(wheel, Path(tmp) / wheel.name):
                defined, undefined, versioned = dynamic_symbols(path)
                own |= defined
                outside |= versioned          # a C runtime name some ELF imports without a version
                own_files.add(Path(member).name)
                libs = needed(path)
                imports.append((libs, undefined))
                data = path.read_bytes()
                strings |= {s.decode() for s in re.findall(rb"[A-Za-z_][A-Za-z0-9_]{3,}", data)}
                names = {so_name(s.decode()) for s in data.split(b"\0") if LIBNAME.fullmatch(s)}
                for lib in set(libs) | names:
                    loaded.setdefault(lib, "needed" if lib in libs else "dlopen")
    cann = {lib: how for lib, how in loaded.items()
            if lib not in own_files and lib not in NOT_CANN and not SYSTEM.match(lib)
            and not lib.startswith(("libtorch", "libc10", "libnpu_profiler", "libop_plugin"))}
    out = {lib: {"loaded": how, "functions": set(), "objects": set()} for lib, how in cann.items()}

    def place(name, kind, libs):
        hint = hinted(name)
        candidates = [lib for lib in libs if lib in out]
        target = hint if hint in candidates else candidates[0] if candidates else None
        if target:
            out[target]["objects" if kind == "object" else "functions"].add(name)

    for libs, undefined in imports:
        for name, kind in undefined.items():
            if name not in own and name not in outside and not name.startswith(("Py", "_Py")):
                place(name, kind, libs)
    for name in sorted(strings - own - outside):
        hint = hinted(name)
        if LOOKUP.match(name) and hint in out:
            out[hint]["functions"].add(name)
    return {lib: {"loaded": v["loaded"], "functions": sorted(v["functions"]), "objects": sorted(v["objects"])}
            for lib, v in sorted(out.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, help="write the JSON here (default: stdout)")
    args = parser.parse_args()
    libraries = analyse(args.wheels)
    result = {
        "made_by": "scripts/torch-npu-symbols.py",
        "wheels": {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in args.wheels},
        "libraries": libraries,
    }
    text = json.dumps(result, indent=1) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    functions = sum(len(v["functions"]) for v in libraries.values())
    objects = sum(len(v["objects"]) for v in libraries.values())
    print(f"{len(libraries)} libraries, {functions} functions, {objects} data objects", file=sys.stderr)


if __name__ == "__main__":
    main()
