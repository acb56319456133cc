"""Stand-ins judged by real binaries: ELF libraries with the symbols the real torch_npu takes,
the real layouts and set_env.sh of each CANN family, the fallback without a C compiler."""
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from ascend_build.demo import elflibs, standins
from ascend_build.platforms import host_arch
from ascend_build.errors import ConfigError

FILL = 4096
HOST = host_arch()
OTHER = "aarch64" if HOST == "x86_64" else "x86_64"
E_MACHINE = {"x86_64": 62, "aarch64": 183}
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "torch-npu-symbols.py"
needs_readelf = pytest.mark.skipif(not shutil.which("readelf"), reason="readelf (binutils) is not installed")


def needs_compiler(arch):
    return pytest.mark.skipif(not elflibs.compiler(arch), reason=f"no C compiler for {arch} here")


def extract(run: Path, into: Path) -> Path:
    done = subprocess.run(["sh", str(run), "--noexec", f"--extract={into}"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return into


def fill_templates(root: Path) -> None:
    """What the installer does after unpacking: @INSTALL_PATH@ in the set_env.sh templates."""
    for template in root.rglob("*.in"):
        template.with_suffix("").write_text(template.read_text().replace("@INSTALL_PATH@", str(root)))


def sourced(script: Path, *args: str, env: dict = None) -> dict:
    """The environment after `. script args` in bash, started from `env`."""
    probe = f'. "{script}" {" ".join(args)} >/dev/null && env -0'
    out = subprocess.run(["bash", "-c", probe], env={"PATH": "/usr/bin:/bin", **(env or {})},
                         capture_output=True, text=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF"
    return int.from_bytes(data[18:20], "little")


def dynamic(path: Path) -> str:
    return subprocess.run(["readelf", "-W", "-d", "--dyn-syms", str(path)], capture_output=True, text=True, check=True).stdout


# -- set_env.sh per family -------------------------------------------------------------------------

TOOLKIT_FAMILIES = [name for name, fam in standins.families().items() if fam.runtime == "toolkit"]


@pytest.mark.parametrize("name", TOOLKIT_FAMILIES)
def test_toolkit_set_env_exports_the_real_paths(tmp_path, name):
    fam = standins.family(name)
    paths = standins.generate(tmp_path / "pkgs", cann=name, arch=HOST, fill=FILL)
    root = extract(paths[0], tmp_path / "P")
    fill_templates(root)
    new_layout = fam.cann.startswith(("8.5", "9."))
    home = root / (f"cann-{fam.cann}" if new_layout else "ascend-toolkit/latest")
    (root / "ascend-toolkit/latest").symlink_to(f"../cann-{fam.cann}" if new_layout else fam.cann)
    env = sourced(root / "ascend-toolkit/set_env.sh", env={"LD_LIBRARY_PATH": "/keep", "PATH": "/usr/bin:/bin"})
    assert env["ASCEND_TOOLKIT_HOME"] == env["ASCEND_HOME_PATH"] == env["ASCEND_AICPU_PATH"] == str(home)
    assert env["ASCEND_OPP_PATH"] == f"{home}/opp" and env["TOOLCHAIN_HOME"] == f"{home}/toolkit"
    libs = env["LD_LIBRARY_PATH"].split(":")
    assert libs[-1] == "/keep"                              # prepended, as the real ones do
    wanted = ["lib64", "lib64/plugin/opskernel", "lib64/plugin/nnengine", "tools/aml/lib64", "tools/aml/lib64/plugin",
              f"opp/built-in/op_impl/ai_core/tbe/op_tiling/lib/linux/{HOST}"]
    for rel in wanted:
        assert f"{home}/{rel}" in libs and (home / rel).is_dir(), rel
    for rel in ("bin", "compiler/ccec_compiler/bin", "tools/ccec_compiler/bin"):
        assert f"{home}/{rel}" in env["PATH"].split(":") and (home / rel).is_dir(), rel
    for rel in ("runtime", "compiler", "opp"):               # what real torch_npu checks
        assert (home / rel).is_dir()
    assert (home / f"{HOST}-linux/ascend_toolkit_install.info").is_file()
    assert (home / "lib64/libascendcl.so").is_file() and (home / "lib64/libhccl.so").is_file()
    if new_layout:
        own = sourced(home / "set_env.sh", env={"LD_LIBRARY_PATH": "/keep"})
        assert own["ASCEND_TOOLKIT_HOME"] == env["ASCEND_TOOLKIT_HOME"] and own["LD_LIBRARY_PATH"] == env["LD_LIBRARY_PATH"]
        bisheng = sourced(home / "share/info/ascendnpu-ir/bin/set_env.sh")
        assert bisheng["PATH"].startswith(f"{home}/share/info/ascendnpu-ir/bin:")
    else:
        assert not list(root.glob("cann-*"))


def test_runtime_only_set_env(tmp_path):
    paths = standins.generate(tmp_path / "pkgs", cann="8.3.RC1-nnrt", arch=HOST, fill=FILL)
    root = extract(paths[0], tmp_path / "P")
    fill_templates(root)
    (root / "nnrt/latest").symlink_to("8.3.RC1")
    env = sourced(root / "nnrt/set_env.sh")
    home = root / "nnrt/latest"
    assert env["ASCEND_HOME_PATH"] == str(home) and env["ASCEND_OPP_PATH"] == f"{home}/opp"
    for rel in ("runtime", "compiler", "lib64/plugin/nnengine"):
        assert (home / rel).is_dir()


@pytest.mark.parametrize("abi", ["0", "1"])
def test_nnal_set_env_uses_latest_and_the_abi_asked(tmp_path, abi):
    nnal = standins.make_nnal(tmp_path, "8.5.0", HOST, FILL)
    root = extract(nnal, tmp_path / "P")
    fill_templates(root)
    (root / "nnal/atb/latest").symlink_to("8.5.0")
    env = sourced(root / "nnal/atb/set_env.sh", f"--cxx_abi={abi}", env={"LD_LIBRARY_PATH": "/keep"})
    home = root / f"nnal/atb/latest/atb/cxx_abi_{abi}"
    assert env["ATB_HOME_PATH"] == str(home)
    assert env["LD_LIBRARY_PATH"].startswith(f"{home}/lib:") and env["LD_LIBRARY_PATH"].endswith(":/keep")
    assert (home / "lib/libatb.so").is_file() and (home / "lib/liblcal.so").is_file()


def test_nnal_installer_accepts_torch_atb_and_the_others_do_not(tmp_path):
    paths = standins.generate(tmp_path, cann="8.5.0", arch=HOST, fill=FILL)
    toolkit, nnal = paths[0], paths[2]
    refused = subprocess.run(["sh", str(toolkit), "--install", "--torch_atb"], capture_output=True, text=True)
    assert refused.returncode == 1 and "unrecognized option: --torch_atb" in refused.stdout
    # accepted: the NNAL installer goes on to its checks (here: no toolkit environment)
    accepted = subprocess.run(["sh", str(nnal), "--torch_atb"], capture_output=True, text=True)
    assert "unrecognized option" not in accepted.stdout and "Usage" in accepted.stdout


def test_mindie_real_layout_and_set_env(tmp_path):
    mindie = standins.make_mindie(tmp_path, "2.3.0", HOST, 0, FILL)
    root = extract(mindie, tmp_path / "P")
    fill_templates(root)
    (root / "mindie/latest").symlink_to("2.3.0")
    env = sourced(root / "mindie/set_env.sh")
    service = root / "mindie/latest/mindie-service"
    assert env["MINDIE_HOME"] == str(root / "mindie/latest") and env["MIES_INSTALL_PATH"] == str(service)
    assert env["PATH"].startswith(f"{service}/bin:")
    assert f"{service}/lib" in env["LD_LIBRARY_PATH"].split(":") and f"{service}/lib/grpc" in env["LD_LIBRARY_PATH"].split(":")
    for rel in ("bin/mindieservice_daemon", "lib", "lib/grpc"):
        assert (service / rel).exists()
    assert (root / "mindie/latest/mindie-llm").is_dir()


def test_atb_models_set_env_finds_its_own_folder(tmp_path):
    tarball = standins.make_atb_tarball(tmp_path, "1.0.RC2", HOST, "3.11", "2.1.0", 0, FILL)
    home = tmp_path / "P/atb-models"
    home.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(home)
    site = tmp_path / "site"
    (site / "torch/lib").mkdir(parents=True)
    (site / "torch/__init__.py").write_text("")
    env = sourced(home / "set_env.sh", env={"PYTHONPATH": str(site), "LD_LIBRARY_PATH": "/keep",
                                             "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert env["ATB_SPEED_HOME_PATH"] == str(home)
    assert env["PYTHONPATH"].startswith(f"{home}:")
    libs = env["LD_LIBRARY_PATH"].split(":")
    assert libs[0] == f"{home}/lib" and str(site / "torch/lib") in libs and libs[-1] == "/keep"


@pytest.mark.parametrize("arch, abi", [("x86_64", 0), ("aarch64", 1)])
def test_family_abi_follows_the_arch(tmp_path, arch, abi):
    paths = standins.generate(tmp_path, cann="8.5.0", arch=arch, fill=FILL, elf=False)
    assert paths[-1].name == f"Ascend-mindie_2.3.0_linux-{arch}_abi{abi}.run"
    with zipfile.ZipFile(paths[3]) as zf:
        assert (b"__cxx11" in zf.read("torch/lib/libc10.so")) == bool(abi)
        assert f"return {bool(abi)}" in zf.read("torch/__init__.py").decode()


# -- ELF libraries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_elf_libraries_for_the_arch_with_the_symbols_torch_npu_takes(tmp_path, arch):
    if not elflibs.compiler(arch):
        pytest.skip(f"no C compiler for {arch} here")
    paths = standins.generate(tmp_path / "pkgs", cann="8.5.0", arch=arch, fill=FILL, elf=True)
    root = extract(paths[0], tmp_path / "P")
    extract(paths[2], root)
    lib64 = root / "cann-8.5.0/lib64"
    data = elflibs.cann_libraries()
    found = {p.name: p for p in lib64.glob("*.so")} | {p.name: p for p in root.glob("nnal/atb/8.5.0/atb/cxx_abi_1/lib/*.so")}
    assert set(data) <= set(found)
    for name, path in found.items():
        assert machine(path.read_bytes()) == E_MACHINE[arch], name
    if shutil.which("readelf"):
        for name in ("libhccl.so", "libascendcl.so", "libopapi.so", "libatb.so"):
            table = dynamic(found[name])
            assert f"Library soname: [{name}]" in table
            defined = {line.split()[7] for line in table.splitlines()
                       if len(line.split()) >= 8 and line.split()[6] != "UND" and line.split()[0].rstrip(":").isdigit()}
            assert set(data[name]["functions"]) <= defined and data[name]["functions"], name
    with zipfile.ZipFile(paths[3]) as zf:
        c10 = zf.read("torch/lib/libc10.so")
    assert machine(c10) == E_MACHINE[arch] and (b"__cxx11" in c10) == (arch == "aarch64")


def test_symbol_data_names_the_libraries_torch_npu_needs():
    data = elflibs.symbol_data()
    libs = data["libraries"]
    assert any(name.startswith("torch_npu-2.6.") for name in data["wheels"])
    for name in ("libhccl.so", "libascendcl.so", "libacl_op_compiler.so", "libge_runner.so", "libgraph.so",
                 "libacl_tdt_channel.so", "libatb.so"):
        assert libs[name]["loaded"] == "needed", name
    for name in ("libaclnn_math.so", "libaclnn_ops_infer.so", "libasdsip.so", "libascend_kernel_hook.so"):
        assert libs[name]["loaded"] == "dlopen", name
    assert "libmspti.so" not in libs
    assert "HcclCommInitRootInfo" in libs["libhccl.so"]["functions"]
    names = {n for lib in libs.values() for n in lib["functions"] + lib["objects"]}
    assert not [n for n in names if "@" in n or n.startswith(("_ZN3c10", "_ZN2at", "Py"))]   # no glibc, torch, Python
    assert not [n for n in names if n.startswith(("_ZNSt", "_ZSt", "_ZNKSt", "_ZTISt", "__cxa_"))]   # nor the C++ runtime's
    assert not names & {"dlopen", "dlsym", "pthread_create", "malloc"}   # the C runtime's, even when imported unversioned


def test_symbol_data_covers_vllm_ascend_and_torch_npu_2_10():
    data = elflibs.symbol_data()
    libs, wheels = data["libraries"], data["wheels"]
    assert {"torch_npu-2.10.0.post4-cp311-cp311-manylinux_2_28_aarch64.whl",
            "vllm_ascend-0.23.0-cp311-cp311-manylinux_2_34_aarch64.whl"} <= set(wheels)
    assert all(len(digest) == 64 for digest in wheels.values())
    assert sorted(w for group in data["sets"] for w in group) == sorted(wheels)
    # what vllm_ascend_C*.so and its custom op libraries link (DT_NEEDED), besides torch's and torch_npu's
    for name in ("libascendcl.so", "libopapi.so", "libruntime.so", "libplatform.so", "libregister.so", "libc_sec.so",
                 "libascendalog.so", "libunified_dlog.so", "libmmpa.so", "liberror_manager.so", "libprofapi.so",
                 "libge_common_base.so", "libascend_dump.so", "libnnopbase.so", "libopapi_math.so", "libops_base.so",
                 "libgraph_base.so", "libexe_graph.so", "liboptiling.so"):
        assert libs[name]["loaded"] == "needed", name
    assert "_ZN2fe19PlatformInfoManager8InstanceEv" in libs["libplatform.so"]["functions"]
    assert "memcpy_s" in libs["libc_sec.so"]["functions"]
    assert not {"libvllm_ascend_kernels.so", "libcust_opapi.so", "libtorch_npu.so"} & set(libs)
    assert set(elflibs.NNAL_LIBRARIES) <= set(libs) and not set(elflibs.NNAL_LIBRARIES) & set(elflibs.toolkit_libraries("aarch64", False))


def test_c_source_keeps_mangled_names():
    source = elflibs.c_source("libx.so", ["_ZN2ge10GEFinalizeEv", "aclInit"], ["_ZTIN2ge5GraphE"])
    assert '__asm__("_ZN2ge10GEFinalizeEv")' in source and '__asm__("aclInit")' in source
    assert '__asm__("_ZTIN2ge5GraphE")' in source


@pytest.mark.skipif(not elflibs.compiler(HOST), reason="no C compiler for the host arch")
def test_compiled_libraries_are_cached_by_source(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = elflibs.compile_library(HOST, "libcache.so", elflibs.c_source("libcache.so", ["aclOne"]))
    assert len(list((tmp_path / "ascend-build/standin-libs").glob("*.so"))) == 1

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")
    monkeypatch.setattr(elflibs.subprocess, "run", no_compiler)
    assert elflibs.compile_library(HOST, "libcache.so", elflibs.c_source("libcache.so", ["aclOne"])) == first


# -- no compiler -----------------------------------------------------------------------------------


def test_without_a_compiler_the_libraries_are_placeholders_said_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(elflibs, "_warned", set())
    with pytest.warns(UserWarning, match=f"no C compiler for {OTHER}.*apt-get install gcc-"):
        paths = standins.generate(tmp_path / "pkgs", cann="8.0.RC2", arch=OTHER, fill=FILL)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    root = extract(paths[0], tmp_path / "P")
    lib = (root / "ascend-toolkit/8.0.RC2/lib64/libhccl.so").read_bytes()
    assert not lib.startswith(b"\x7fELF") and b"placeholder" in lib
    with zipfile.ZipFile(paths[3]) as zf:
        assert b"__cxx11" in zf.read("torch/lib/libc10.so")      # aarch64 torch 2.1 is ABI 1 ...
    import warnings
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        standins.make_toolkit(tmp_path / "pkgs", "8.0.RC2", OTHER, FILL)   # ... and the note is not repeated


def test_elf_forced_without_a_compiler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError) as err:
        standins.generate(tmp_path, cann="8.5.0", arch="aarch64", fill=FILL, elf=True)
    assert "no C compiler for aarch64" in str(err.value)
    assert err.value.fix == ("apt-get install gcc-aarch64-linux-gnu" if HOST != "aarch64" else "apt-get install gcc")


# -- the extraction script -------------------------------------------------------------------------


def _shared(tmp: Path, name: str, source: str, *links: str) -> Path:
    c_file = tmp / f"{name}.c"
    c_file.write_text(source)
    out = tmp / name
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(c_file), f"-L{tmp}", *links, f"-Wl,-soname,{name}"],
                   check=True, capture_output=True)
    return out


def _wheel(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@needs_readelf
@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc is not installed")
def test_script_reads_needed_libraries_imports_and_lookups(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    _shared(build, "libhccl.so", "int HcclCommInitRootInfo(void) { return 0; }\n")
    c10 = _shared(build, "libc10.so", "int c10_thing(void) { return 1; }\n")
    npu = _shared(build, "libtorch_npu.so",
                  'extern int HcclCommInitRootInfo(void); extern int c10_thing(void);\n'
                  'const char *lib = "libopapi"; const char *fn = "aclnnAdd"; const char *skip = "libmspti.so";\n'
                  "int npu_entry(void) { return HcclCommInitRootInfo() + c10_thing(); }\n", "-lhccl", "-lc10")
    torch = _wheel(tmp_path / "torch-2.6.0-cp311-cp311-linux_x86_64.whl", {"torch/lib/libc10.so": c10.read_bytes()})
    torch_npu = _wheel(tmp_path / "torch_npu-2.6.0-cp311-cp311-linux_x86_64.whl",
                       {"torch_npu/lib/libtorch_npu.so": npu.read_bytes(), "torch_npu/__init__.py": b""})
    out = tmp_path / "symbols.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "-o", str(out), str(torch_npu), str(torch)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "libraries" in done.stderr
    libs = json.loads(out.read_text())["libraries"]
    assert libs["libhccl.so"] == {"loaded": "needed", "functions": ["HcclCommInitRootInfo"], "objects": []}
    assert libs["libopapi.so"] == {"loaded": "dlopen", "functions": ["aclnnAdd"], "objects": []}
    assert "libc10.so" not in libs and "libmspti.so" not in libs
    without_torch = subprocess.run([sys.executable, str(SCRIPT), str(torch_npu)], capture_output=True, text=True)
    assert without_torch.returncode != 0 and "torch wheel" in without_torch.stderr


@needs_readelf
@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc is not installed")
def test_script_takes_wheel_sets_and_merges(tmp_path):
    """Each set against its own torch; vllm_ascend's imports from torch_npu are not CANN's; a custom op
    package's liboptiling.so (SONAME libcust_opmaster_rt2.0.so) does not hide CANN's liboptiling.so."""
    build = tmp_path / "build"
    build.mkdir()
    for name, body in [("libhccl.so", "int HcclCommInitRootInfo(void) { return 0; }"),
                       ("libascendcl.so", "int aclInit(void) { return 0; } int aclrtNew(void) { return 0; }"),
                       ("liboptiling.so", "int TilingHelper(void) { return 0; }"),
                       ("libc10.so", "int c10_thing(void) { return 1; } int c10_new(void) { return 1; }")]:
        _shared(build, name, body + "\n")
    npu_old = _shared(build, "libtorch_npu.so", "extern int HcclCommInitRootInfo(void), c10_thing(void);\n"
                      "int npu_entry(void) { return HcclCommInitRootInfo() + c10_thing(); }\n", "-lhccl", "-lc10").read_bytes()
    npu_new = _shared(build, "libtorch_npu.so", "extern int aclInit(void), c10_new(void);\n"
                      "int npu_entry(void) { return aclInit() + c10_new(); }\n", "-lascendcl", "-lc10").read_bytes()
    vllm_c = _shared(build, "vllm_ascend_C.so", "extern int npu_entry(void), aclrtNew(void);\n"
                     "int vllm_entry(void) { return npu_entry() + aclrtNew(); }\n", "-ltorch_npu", "-lascendcl")
    (build / "opmaster.c").write_text("extern int TilingHelper(void); int Tiling(void) { return TilingHelper(); }\n")
    opmaster = build / "libcust_opmaster_rt2.0.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(opmaster), str(build / "opmaster.c"), f"-L{build}", "-loptiling",
                    "-Wl,-soname,libcust_opmaster_rt2.0.so"], check=True, capture_output=True)
    c10 = (build / "libc10.so").read_bytes()
    old_set = [_wheel(tmp_path / "torch_npu-2.6.0-cp311-cp311-linux_x86_64.whl", {"torch_npu/lib/libtorch_npu.so": npu_old}),
               _wheel(tmp_path / "torch-2.6.0-cp311-cp311-linux_x86_64.whl", {"torch/lib/libc10.so": c10})]
    (tmp_path / "new").mkdir()
    new_set = [_wheel(tmp_path / "new/torch_npu-2.10.0-cp311-cp311-linux_x86_64.whl", {"torch_npu/lib/libtorch_npu.so": npu_new}),
               _wheel(tmp_path / "vllm_ascend-0.23.0-cp311-cp311-linux_x86_64.whl",
                      {"vllm_ascend/vllm_ascend_C.so": vllm_c.read_bytes(),
                       "vllm_ascend/vendors/x/op_tiling/liboptiling.so": opmaster.read_bytes(),
                       "vllm_ascend/vendors/x/op_tiling/lib/linux/x86_64/libcust_opmaster_rt2.0.so": opmaster.read_bytes()}),
               _wheel(tmp_path / "new/torch-2.10.0-cp311-cp311-linux_x86_64.whl", {"torch/lib/libc10.so": c10})]
    first, merged = tmp_path / "first.json", tmp_path / "merged.json"
    run = lambda *args: subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)
    done = run("-o", first, *old_set)
    assert done.returncode == 0, done.stderr
    done = run("--merge", first, "-o", merged, *new_set)
    assert done.returncode == 0, done.stderr
    data = json.loads(merged.read_text())
    libs = data["libraries"]
    assert libs["libhccl.so"]["functions"] == ["HcclCommInitRootInfo"]         # kept from the first table
    assert libs["libascendcl.so"] == {"loaded": "needed", "functions": ["aclInit", "aclrtNew"], "objects": []}
    assert libs["liboptiling.so"]["functions"] == ["TilingHelper"]
    assert not {"libtorch_npu.so", "libcust_opmaster_rt2.0.so", "libc10.so"} & set(libs)
    assert "npu_entry" not in str(libs)      # vllm_ascend takes it from torch_npu
    assert data["sets"] == [[w.name for w in old_set], [w.name for w in new_set]]
    assert list(data["wheels"]) == [w.name for w in old_set + new_set]
    assert data["made_by"].endswith(" --set " + " ".join(w.name for w in new_set))
    at_once = tmp_path / "at_once.json"
    assert run("-o", at_once, *old_set, "--set", *new_set).returncode == 0
    assert json.loads(at_once.read_text()) == data


def test_init_demo_says_when_the_libraries_are_placeholders_and_elf_insists(tmp_path):
    import os
    from clirun import cli
    bare = {**os.environ, "PATH": str(tmp_path / "empty")}
    made = cli("init", "--demo", tmp_path / "d", "--arch", OTHER, "--cann", "8.5.0", "--filler", "1KiB", env=bare)
    assert made.returncode == 0, made.stderr
    assert "text placeholders" in made.stderr and made.stderr.count("no C compiler") == 1
    refused = cli("init", "--demo", "--elf", tmp_path / "e", "--arch", OTHER, "--filler", "1KiB", env=bare)
    assert refused.returncode != 0 and "no C compiler" in refused.stderr and "apt-get install gcc" in refused.stderr
    assert not (tmp_path / "e").exists() or not any((tmp_path / "e").iterdir())
    alone = cli("init", "--elf", tmp_path / "f")
    assert alone.returncode != 0 and "needs --demo" in alone.stderr
