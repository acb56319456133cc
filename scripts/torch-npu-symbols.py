#!/usr/bin/env python3
"""List the CANN libraries real Ascend wheels (torch_npu, vllm_ascend) need, and the symbols they take from each.

    scripts/torch-npu-symbols.py [-o OUT.json] [--merge EXISTING.json] WHEEL... [--set WHEEL...]...

The wheels come in sets, each analysed on its own: the positional wheels are one set, each --set
another (e.g. torch_npu 2.6 with torch 2.6; torch_npu 2.10 and vllm_ascend with torch 2.10). In a
set the torch-* wheel(s) are the providers and every other wheel is a subject. Reads the ELF files
of the wheels (their .so files, not the AI CPU kernels: those run on the NPU) with `readelf`
(binutils). From the subject wheels: the libraries their ELF files link (DT_NEEDED) and the ones
they load by name (library names in their strings), the undefined dynamic symbols they import and
the API names they look up with dlsym. The torch wheel(s) of the same set say which symbols are
torch's (defined there) or come from elsewhere (Python, the C runtime: undefined there too), and
the subject wheels' ELF files define their own (vllm_ascend imports from libtorch_npu.so: give
torch_npu in its set), those loaded with the importing ELF: its DT_NEEDED closure and that of each
ELF whose closure holds it (libtensorpipe's memcpy_s is not libcust_opapi's); none of these goes
to a CANN library, nor does a C++ runtime name (std::, __cxa_*).
Nor is a library a wheel holds CANN's: the SONAME of one of its ELF files, else the file name (a
custom op package's op_tiling/liboptiling.so is its libcust_opmaster_rt2.0.so: the liboptiling.so
that links is CANN's). Versioned symbols (glibc, libstdc++, libgcc) and weak ones are skipped, and
so is libmspti (a stand-in of it hangs the profiler); driver libraries (libascend_hal, libdcmi)
and a custom op package's libcust_opapi are not CANN's.

For each ELF that imports a symbol, the symbol goes to a CANN library that ELF links: the first
its name points to (HINTS) that the ELF links, else the first in its DT_NEEDED list (so a symbol
may be in two libraries: ELFs linking different sets import it); an ELF linking none takes those
the ELFs loaded with it link. Names looked up by dlsym go to the library their name points to.

The tables of the sets are united (a library is "needed" when one set links it), and --merge
unites them with an existing table (its libraries, symbols, wheels and sets stay). "wheels" lists
every wheel with its sha256, "sets" the wheel names of each set, "made_by" the command giving all
the sets at once. The result (library -> functions and data objects) is what demo/elflibs.py
compiles into the stand-in CANN libraries.
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
# name -> the libraries that define it in CANN, the first the importing ELF links (first match wins)
HINTS = [
    (r"^Hccl[A-Z]|^hccl[A-Z]", "libhccl.so"),
    (r"^aclnn[A-Z]|^acl(Create|Destroy)(Tensor|TensorList|Scalar|ScalarList|IntArray|BoolArray|FloatArray|AclOpExecutor)$|^aclGetViewShape|^acl(Rfft1D|Stft)",
     "libopapi.so"),
    (r"^aclprof[A-Z]", "libmsprofiler.so"),
    (r"^aclop|^aclGenGraph|^aclCreateGraphDumpOpt|^aclDestroyGraphDumpOpt|^aclSetCompileopt", "libacl_op_compiler.so"),
    (r"^acltdt", "libacl_tdt_channel.so"),
    (r"^aclsk[A-Z]", "libascendsk.so"),
    (r"^(acl)?shmemx?_[a-z]", "libshmem.so"),
    (r"^acl[a-zA-Z]*[A-Z]", "libascendcl.so"),
    (r"^_ZN?K?\d*ge\d|^_ZN2ge|^_ZNK2ge", ("libge_runner.so", "libgraph.so", "libgraph_base.so", "libregister.so")),
    (r"^[mM]stx[A-Z]", "libms_tools_ext.so"),
    (r"^asd[A-Z]", "libasdsip.so"),
    (r"^[lL]cal[A-Z]", "liblcal.so"),
    (r"^rt[A-Z]", "libruntime.so"),
    (r"^mm[A-Z]", "libmmpa.so"),
    (r"^[a-z]+_s$", "libc_sec.so"),
    (r"^(Dlog|dlog|CheckLogLevel)", ("libascendalog.so", "libunified_dlog.so")),
    (r"^Msprof[A-Z]", "libprofapi.so"),
    (r"^_ZN?K?2fe\d", "libplatform.so"),
    (r"ErrorManager", "liberror_manager.so"),
    (r"^_ZN?K?8optiling", "libregister.so"),
    (r"^_ZN?K?4gert", ("libregister.so", "libexe_graph.so")),
    (r"^_ZN?K?3Ops4Base", "libops_base.so"),
    (r"^_ZN?K?2op\d|^_ZN?K?(9aclTensor|13aclTensorList|13aclOpExecutor)", ("libnnopbase.so", "libopapi.so")),
    (r"atb", "libatb.so"),
]
# the C++ runtime's names (libstdc++, libgcc): never CANN's, even when imported without a version
CXX_RUNTIME = re.compile(r"^_Z(T[VIS])?N?K?S[tiosda]|^_Z(T[VIS])?N10__cxxabiv1|^__cxa_|^__gxx_|^_Unwind_|^_Zn[wa][jm]|^_Zd[la]Pv")
# API names looked up by name (dlsym) rather than linked: only those a hint places
LOOKUP = re.compile(r"^(Hccl|aclnn|aclprof|aclrt|aclsys|aclop|acl|mstx|Mstx|asd|Lcal|lcal|aclsk)[A-Z][A-Za-z0-9_]*$"
                    r"|^(acl)?shmemx?_[a-z][a-z_]*$")
# a whole string: libopapi, libhccl.so (not libraries, nor a prefix such as libopapi_)
LIBNAME = re.compile(rb"lib(?!rar)[A-Za-z0-9_]*[A-Za-z0-9](?:\.so)?")
DEVICE = re.compile(r"/aicpu_kernel/")   # AI CPU kernels run on the NPU: what they load is not the host's


def hinted(name: str) -> tuple:
    """The libraries the name points to, most likely first (none: empty)."""
    libs = next((libs for pattern, libs in HINTS if re.search(pattern, name)), ())
    return (libs,) if isinstance(libs, str) else libs


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


def provided(path: Path) -> str:
    """The library name an ELF file is linked by: its SONAME, else its file name."""
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", readelf("-d", str(path)))
    return found.group(1) if found else path.name


def elf_members(wheel: Path, into: Path):
    """Extract the ELF files of a wheel; yield (member name, path)."""
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if ".so" not in info.filename or DEVICE.search(info.filename):
                continue
            with zf.open(info) as member:
                if member.read(4) != b"\x7fELF":
                    continue
            path = Path(zf.extract(info, into))
            yield info.filename, path


def so_name(name: str) -> str:
    return name if name.endswith(".so") else f"{name}.so"


def scopes(elfs):
    """For each ELF of a wheel set, given as (name, DT_NEEDED): the indices of the ELFs loaded with it,
    those in the DT_NEEDED closure of any ELF whose closure holds it (a library sees its loader's)."""
    by_name = {}
    for i, (name, _) in enumerate(elfs):
        by_name.setdefault(name, []).append(i)
    closures = []
    for i in range(len(elfs)):
        seen, todo = {i}, [i]
        while todo:
            for lib in elfs[todo.pop()][1]:
                for j in by_name.get(lib, ()):
                    if j not in seen:
                        seen.add(j)
                        todo.append(j)
        closures.append(seen)
    return [set().union(*(c for c in closures if i in c)) for i in range(len(elfs))]


def analyse(wheels):
    """The CANN libraries one wheel set needs: library -> how it is loaded, functions, data objects."""
    subject = [w for w in wheels if not re.match(r"torch-", w.name)]
    providers = [w for w in wheels if re.match(r"torch-", w.name)]
    if not subject or not providers:
        sys.exit(f"give each set's subject wheel(s) (torch_npu, vllm_ascend) and the torch wheel(s) they were built for: "
                 f"{' '.join(w.name for w in wheels)}")
    outside, own, own_files, elfs, loaded, strings = set(), set(), set(), [], {}, set()
    with tempfile.TemporaryDirectory() as tmp:
        for wheel in providers:
            for member, path in elf_members(wheel, Path(tmp) / wheel.name):
                defined, undefined, versioned = dynamic_symbols(path)
                outside |= defined | set(undefined) | versioned
                own_files.add(provided(path))
                path.unlink()
        for wheel in subject:
            for member, path in elf_members(wheel, Path(tmp) / wheel.name):
                defined, undefined, versioned = dynamic_symbols(path)
                own |= defined
                outside |= versioned          # a C runtime name some ELF imports without a version
                name, libs = provided(path), needed(path)
                own_files.add(name)
                elfs.append((name, libs, defined, undefined))
                data = path.read_bytes()
                strings |= {s.decode() for s in re.findall(rb"[A-Za-z_][A-Za-z0-9_]{3,}", data)}
                names = {so_name(s.decode()) for s in data.split(b"\0") if LIBNAME.fullmatch(s)}
                for lib in set(libs) | names:
                    if lib in libs or lib not in loaded:
                        loaded[lib] = "needed" if lib in libs else "dlopen"
                path.unlink()
    cann = {lib: how for lib, how in loaded.items()
            if lib not in own_files and lib not in NOT_CANN and not SYSTEM.match(lib)
            and not lib.startswith(("libtorch", "libc10", "libnpu_profiler", "libop_plugin"))}
    out = {lib: {"loaded": how, "functions": set(), "objects": set()} for lib, how in cann.items()}

    def place(name, kind, candidates):
        target = next((lib for lib in hinted(name) if lib in candidates), candidates[0] if candidates else None)
        if target:
            out[target]["objects" if kind == "object" else "functions"].add(name)

    for (_, libs, _, undefined), scope in zip(elfs, scopes([(name, libs) for name, libs, _, _ in elfs])):
        visible = set().union(*(elfs[i][2] for i in scope))
        candidates = [lib for lib in libs if lib in out]
        if not candidates:        # it links no CANN library: those its loaders link are there
            candidates = list(dict.fromkeys(lib for i in sorted(scope) for lib in elfs[i][1] if lib in out))
        for name, kind in undefined.items():
            if (name not in visible and name not in outside and not name.startswith(("Py", "_Py"))
                    and not CXX_RUNTIME.match(name)):
                place(name, kind, candidates)
    for name in sorted(strings - own - outside):
        hint = next((lib for lib in hinted(name) if lib in out), None)
        if LOOKUP.match(name) and hint:
            out[hint]["functions"].add(name)
    return {lib: {"loaded": v["loaded"], "functions": sorted(v["functions"]), "objects": sorted(v["objects"])}
            for lib, v in sorted(out.items())}


def merge(tables):
    """One table of several: a library any of them has (needed when one links it), every symbol of each."""
    out = {}
    for table in tables:
        for lib, entry in table.items():
            into = out.setdefault(lib, {"loaded": entry["loaded"], "functions": set(), "objects": set()})
            if entry["loaded"] == "needed":
                into["loaded"] = "needed"
            into["functions"].update(entry["functions"])
            into["objects"].update(entry["objects"])
    return {lib: {"loaded": v["loaded"], "functions": sorted(v["functions"]), "objects": sorted(v["objects"])}
            for lib, v in sorted(out.items())}


def command(sets) -> str:
    """The command that makes a table of these wheel sets (wheel file names)."""
    words = ["scripts/torch-npu-symbols.py", *sets[0]]
    for more in sets[1:]:
        words += ["--set", *more]
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheels", nargs="+", type=Path, help="one wheel set: subject wheel(s) and their torch wheel(s)")
    parser.add_argument("--set", dest="sets", nargs="+", type=Path, action="append", default=[], metavar="WHEEL",
                        help="another wheel set, analysed on its own (repeatable)")
    parser.add_argument("--merge", type=Path, metavar="EXISTING.json",
                        help="unite the result with this table (its libraries, symbols, wheels and sets stay)")
    parser.add_argument("-o", "--output", type=Path, help="write the JSON here (default: stdout)")
    args = parser.parse_args()
    sets = [args.wheels, *args.sets]
    tables = [analyse(wheels) for wheels in sets]
    wheels = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for group in sets for w in group}
    names = [[w.name for w in group] for group in sets]
    if args.merge:
        existing = json.loads(args.merge.read_text())
        tables.insert(0, existing["libraries"])
        old_sets = existing.get("sets") or [list(existing["wheels"])]
        names = old_sets + [group for group in names if group not in old_sets]
        wheels = {**existing["wheels"], **wheels}
    libraries = merge(tables)
    result = {"made_by": command(names), "wheels": wheels, "sets": names, "libraries": libraries}
    text = json.dumps(result, indent=1) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    functions = sum(len(v["functions"]) for v in libraries.values())
    objects = sum(len(v["objects"]) for v in libraries.values())
    print(f"{len(sets)} wheel set(s){' merged into ' + args.merge.name if args.merge else ''}: "
          f"{len(libraries)} libraries, {functions} functions, {objects} data objects", file=sys.stderr)


if __name__ == "__main__":
    main()
