"""The stand-in generator: real names, valid wheels, makeself header fields, --check."""
import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from ascend_build.catalog import published
from ascend_build.demo import standins
from ascend_build.scaffold import demo_arch

FILL = 4096
PY = f"{sys.version_info.major}.{sys.version_info.minor}"  # wheels pip can install here
ARCH = demo_arch("host")
EXPECTED = {
    ("8.0.RC2", "x86_64", "910b"): [
        "Ascend-cann-toolkit_8.0.RC2_linux-x86_64.run",
        "Ascend-cann-kernels-910b_8.0.RC2_linux-x86_64.run",
        "Ascend-cann-nnal_8.0.RC2_linux-x86_64.run",
        "torch-2.1.0+cpu-0standin-cp311-cp311-linux_x86_64.whl",
        "torch_npu-2.1.0.post6-0standin-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "Ascend-mindie_1.0.RC2_linux-x86_64.run",
        "Ascend-mindie-atb-models_1.0.RC2_linux-x86_torch2.1.0-abi0.tar.gz",
    ],
    ("8.5.0", "aarch64", "A3"): [
        "Ascend-cann-toolkit_8.5.0_linux-aarch64.run",
        "Ascend-cann-A3-ops_8.5.0_linux-aarch64.run",
        "Ascend-cann-nnal_8.5.0_linux-aarch64.run",
        "torch-2.6.0-0standin-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "torch_npu-2.6.0.post5-0standin-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
        "Ascend-mindie_2.3.0_linux-aarch64_abi1.run",                      # bundles the ATB models; aarch64 torch 2.6 is ABI 1
    ],
    ("9.0.0", "x86_64", "910b"): [
        "Ascend-cann-toolkit_9.0.0_linux-x86_64.run",
        "Ascend-cann-910b-ops_9.0.0_linux-x86_64.run",
        "Ascend-cann-nnal_9.0.0_linux-x86_64.run",
        "torch-2.9.0+cpu-0standin-cp311-cp311-linux_x86_64.whl",
        "torch_npu-2.9.0.post2-0standin-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "mindie_llm-3.0.0-0standin-cp311-cp311-linux_x86_64.whl",
        "mindie_sd-3.0.0-0standin-cp311-cp311-linux_x86_64.whl",
        "mindie_motor-3.0.0-0standin-cp311-cp311-linux_x86_64.whl",
    ],
}


@pytest.mark.parametrize("key", list(EXPECTED))
def test_names_follow_the_real_patterns(tmp_path, key):
    cann, arch, chip = key
    paths = standins.generate(tmp_path, cann=cann, arch=arch, chip=chip, fill=FILL)
    assert [p.name for p in paths] == EXPECTED[key]
    vouched = [f"{name}.sha256" for name in EXPECTED[key] if published.lookup(name)]   # names Huawei publishes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(EXPECTED[key] + vouched)


def test_a3_kernels_name_before_8_5():
    assert standins.chip_package_name("kernels", "A3", "8.3.RC1", "aarch64") == "Atlas-A3-cann-kernels_8.3.RC1_linux-aarch64.run"


def header_fields(path: Path) -> dict:
    head = path.read_bytes()[:8192].decode(errors="replace")
    return dict(re.findall(r'^(skip|filesizes|SHA|MD5|label)="([^"]*)"', head, re.M))


def payload(path: Path, skip: int) -> bytes:
    data = path.read_bytes()
    offset = sum(len(line) for line in data.splitlines(keepends=True)[:skip])
    return data[offset:]


@pytest.fixture(scope="module")
def family_set(tmp_path_factory):
    dest = tmp_path_factory.mktemp("set")
    return standins.generate(dest, cann="8.0.RC2", arch=ARCH, python=PY, fill=FILL)


def test_run_header_fields_describe_the_payload(family_set):
    for path in [p for p in family_set if p.suffix == ".run"]:
        fields = header_fields(path)
        body = payload(path, int(fields["skip"]))
        assert int(fields["filesizes"]) == len(body), path.name
        assert fields["SHA"] == hashlib.sha256(body).hexdigest(), path.name
        assert fields["MD5"] == hashlib.md5(body).hexdigest(), path.name
        assert body[:2] == b"\x1f\x8b", "payload is gzip"


@pytest.mark.parametrize("shell", ["sh", "bash", None])
def test_check_accepts_a_good_file(family_set, shell):
    toolkit = family_set[0]
    cmd = [shell, str(toolkit), "--check"] if shell else [str(toolkit), "--check"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_check_rejects_truncated_and_altered_files(family_set, tmp_path):
    toolkit = family_set[0]
    data = toolkit.read_bytes()
    truncated = tmp_path / toolkit.name
    truncated.write_bytes(data[: len(data) - 100])
    result = subprocess.run(["sh", str(truncated), "--check"], capture_output=True, text=True)
    assert result.returncode == 1 and "OK" not in result.stdout.replace("integrity...\n", "")
    altered = bytearray(data)
    altered[-10] ^= 0xFF
    truncated.write_bytes(bytes(altered))
    result = subprocess.run(["sh", str(truncated), "--check"], capture_output=True, text=True)
    assert result.returncode == 1 and "SHA256" in result.stdout


def test_unknown_options_and_no_action_are_refused(family_set):
    toolkit = family_set[0]
    bad = subprocess.run(["sh", str(toolkit), "--yes-please"], capture_output=True, text=True)
    assert bad.returncode == 1 and "unrecognized option" in bad.stdout
    none = subprocess.run(["sh", str(toolkit)], capture_output=True, text=True)
    assert none.returncode == 1 and "Usage" in none.stdout
    kernels = family_set[1]
    full = subprocess.run(["sh", str(kernels), "--full"], capture_output=True, text=True)
    assert full.returncode == 1 and "unrecognized option" in full.stdout


def test_extract_unpacks_without_installing(family_set, tmp_path):
    out = tmp_path / "x"
    result = subprocess.run(["sh", str(family_set[0]), "--noexec", f"--extract={out}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert (out / "ascend-toolkit/8.0.RC2/lib64/libascendcl.so").is_file()


def test_wheels_are_valid_for_pip(family_set, tmp_path):
    wheels = [p for p in family_set if p.suffix == ".whl"]
    for wheel in wheels:
        parse_wheel_filename(wheel.name)
        with zipfile.ZipFile(wheel) as zf:
            assert zf.testzip() is None
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--target", str(target), *map(str, wheels)], check=True)
    probe = "import torch, importlib.metadata as m; print(torch.__version__, torch.compiled_with_cxx11_abi(), m.version('torch_npu'), m.requires('torch_npu'))"
    out = subprocess.run([sys.executable, "-c", probe], env={"PYTHONPATH": str(target)}, capture_output=True, text=True, check=True).stdout
    assert out.split()[:3] == ["2.1.0+cpu" if ARCH == "x86_64" else "2.1.0", "False", "2.1.0.post6"]
    assert "torch==2.1.0" in out


def test_torch_npu_needs_the_toolkit_environment(family_set, tmp_path):
    target = tmp_path / "site"
    wheels = [str(p) for p in family_set if p.suffix == ".whl"]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", str(target), *wheels], check=True)
    bare = subprocess.run([sys.executable, "-c", "import torch_npu"], env={"PYTHONPATH": str(target)}, capture_output=True, text=True)
    assert bare.returncode != 0 and "libhccl.so" in bare.stderr
    lib = tmp_path / "lib64"
    lib.mkdir()
    (lib / "libascendcl.so").write_text("x")
    env = {"PYTHONPATH": str(target), "ASCEND_TOOLKIT_HOME": str(tmp_path), "LD_LIBRARY_PATH": f"/nowhere:{lib}"}
    ok = subprocess.run([sys.executable, "-c", "import torch_npu; print(torch_npu.__version__)"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == "2.1.0.post6"


def test_atb_tarball_holds_wheel_requirements_examples(family_set):
    import tarfile
    with tarfile.open(family_set[-1]) as tar:
        names = tar.getnames()
    tag = standins.py_tag(PY)
    assert f"atb_llm-1.0rc2-{standins.STANDIN_BUILD}-{tag}-{tag}-linux_{ARCH}.whl" in names
    assert "requirements/requirements.txt" in names and any(n.startswith("examples/") for n in names)


def test_filler_size_and_seed():
    assert len(standins.filler(1000, "a")) == 1000
    assert standins.filler(64, "a") == standins.filler(64, "a") != standins.filler(64, "b")


def test_unknown_family_is_a_clear_error():
    from ascend_build.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        standins.family("7.0.0")
    assert "8.5.0" in err.value.fix
