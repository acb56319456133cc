"""File-name grammar (every example of ascend-reference.md §2) and Ascend version ordering."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.version import Version

from ascend_build.catalog.naming import identify, normalise_arch, normalise_chip
from ascend_build.catalog.versions import is_prerelease, parse_version, same_version, version_key
from ascend_build.catalog.model import file_patterns
from ascend_build.components.registry import components

NAMES = file_patterns(components())   # the file names the components declare

F = dict  # expected fields; fields left out are None / False

EXAMPLES = [
    # toolkit
    ("Ascend-cann-toolkit_8.0.RC2_linux-aarch64.run", F(component="toolkit", slot="toolkit", version="8.0.RC2", arch="aarch64", format="run")),
    ("Ascend-cann-toolkit_8.1.RC1_linux-x86_64.run", F(component="toolkit", slot="toolkit", version="8.1.RC1", arch="x86_64", format="run")),
    ("Ascend-cann-toolkit_8.5.0_linux-aarch64.run", F(component="toolkit", slot="toolkit", version="8.5.0", arch="aarch64", format="run")),
    ("Ascend-cann-toolkit_9.0.0-beta.1_linux-x86_64.run", F(component="toolkit", slot="toolkit", version="9.0.0-beta.1", arch="x86_64", format="run", prerelease=True)),
    # kernels (<= 8.3), with and without arch, A3
    ("Ascend-cann-kernels-910b_8.0.RC2_linux-aarch64.run", F(component="kernels", slot="kernels", version="8.0.RC2", arch="aarch64", chip="910b", format="run")),
    ("Ascend-cann-kernels-310p_8.1.RC1_linux-x86_64.run", F(component="kernels", slot="kernels", version="8.1.RC1", arch="x86_64", chip="310p", format="run")),
    ("Ascend-cann-kernels-910b_8.0.RC2_linux.run", F(component="kernels", slot="kernels", version="8.0.RC2", chip="910b", format="run")),
    ("Ascend-cann-kernels-910_7.0.RC1_linux.run", F(component="kernels", slot="kernels", version="7.0.RC1", chip="910", format="run")),
    ("Atlas-A3-cann-kernels_8.3.RC1_linux-aarch64.run", F(component="kernels", slot="kernels", version="8.3.RC1", arch="aarch64", chip="A3", format="run")),
    # ops (>= 8.5)
    ("Ascend-cann-910b-ops_8.5.0_linux-aarch64.run", F(component="ops", slot="kernels", version="8.5.0", arch="aarch64", chip="910b", format="run")),
    ("Ascend-cann-A3-ops_8.5.0_linux-x86_64.run", F(component="ops", slot="kernels", version="8.5.0", arch="x86_64", chip="A3", format="run")),
    ("Ascend-cann-310p-ops_8.5.0_linux-aarch64.run", F(component="ops", slot="kernels", version="8.5.0", arch="aarch64", chip="310p", format="run")),
    ("Ascend-cann-950-ops_9.0.0_linux-x86_64.run", F(component="ops", slot="kernels", version="9.0.0", arch="x86_64", chip="950", format="run")),
    # the official signed zips, and the runtime-only CANN packages
    ("Ascend-cann-toolkit_9.0.0_linux-aarch64.zip", F(component="toolkit", slot="toolkit", version="9.0.0", arch="aarch64", format="zip")),
    ("Ascend-cann-kernels-310p_8.3.RC1_linux-aarch64.zip", F(component="kernels", slot="kernels", version="8.3.RC1", arch="aarch64", chip="310p", format="zip")),
    ("Ascend-cann-nnrt_8.2.RC1_linux-x86_64.zip", F(component="nnrt", slot="toolkit", version="8.2.RC1", arch="x86_64", format="zip")),
    ("Ascend-cann-nnae_8.1.RC1_linux-aarch64.run", F(component="nnae", slot="toolkit", version="8.1.RC1", arch="aarch64", format="run")),
    # NNAL
    ("Ascend-cann-nnal_8.0.RC2_linux-aarch64.run", F(component="nnal", slot="nnal", version="8.0.RC2", arch="aarch64", format="run")),
    # torch
    ("torch-2.1.0-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", F(component="torch", slot="torch", version="2.1.0", arch="aarch64", python="3.10", format="wheel")),
    ("torch-2.1.0+cpu-cp310-cp310-linux_x86_64.whl", F(component="torch", slot="torch", version="2.1.0+cpu", arch="x86_64", python="3.10", format="wheel")),
    # torch_npu
    ("torch_npu-2.1.0.post13-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", F(component="torch_npu", slot="torch_npu", version="2.1.0.post13", arch="aarch64", python="3.10", format="wheel")),
    ("torch_npu-2.6.0.post5-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", F(component="torch_npu", slot="torch_npu", version="2.6.0.post5", arch="x86_64", python="3.11", format="wheel")),
    ("torch_npu-2.6.0.post5-cp311-cp311-manylinux_2_28_aarch64.whl", F(component="torch_npu", slot="torch_npu", version="2.6.0.post5", arch="aarch64", python="3.11", format="wheel")),
    ("torch_npu-1.8.1.post2-cp37-cp37m-linux_aarch64.whl", F(component="torch_npu", slot="torch_npu", version="1.8.1.post2", arch="aarch64", python="3.7", format="wheel")),
    # MindIE 3.x wheels
    ("mindie_llm-3.0.0-cp311-cp311-linux_aarch64.whl", F(component="mindie", slot="mindie_llm", version="3.0.0", arch="aarch64", python="3.11", format="wheel")),
    ("mindie_motor-3.0.0-cp311-cp311-linux_x86_64.whl", F(component="mindie", slot="mindie_wheels", version="3.0.0", arch="x86_64", python="3.11", format="wheel")),
    # MindIE
    ("Ascend-mindie_1.0.RC2_linux-aarch64.run", F(component="mindie", slot="mindie", version="1.0.RC2", arch="aarch64", format="run")),
    ("Ascend-mindie_2.3.0_linux-aarch64_abi0.run", F(component="mindie", slot="mindie", version="2.3.0", arch="aarch64", abi=0, format="run")),
    ("Ascend-mindie_2.3.0_linux-x86_64_abi1.run", F(component="mindie", slot="mindie", version="2.3.0", arch="x86_64", abi=1, format="run")),
    # ATB models
    ("Ascend-mindie-atb-models_1.0.RC1_linux-aarch64_torch2.1.0-abi0.tar.gz", F(component="atb_models", slot="atb_models", version="1.0.RC1", arch="aarch64", torch="2.1.0", abi=0, format="tar.gz")),
    ("Ascend-mindie-atb-models_1.0.RC1_linux-x86_torch2.1.0-abi1.tar.gz", F(component="atb_models", slot="atb_models", version="1.0.RC1", arch="x86_64", torch="2.1.0", abi=1, format="tar.gz")),
    ("Ascend-mindie-atb-models_2.0.T3_linux-aarch64_py311_torch2.3.1-abi1.tar.gz", F(component="atb_models", slot="atb_models", version="2.0.T3", arch="aarch64", python="3.11", torch="2.3.1", abi=1, format="tar.gz", prerelease=True)),
    ("atb_llm-2.3.0-cp311-cp311-linux_aarch64.whl", F(component="atb_llm", slot="atb_models", version="2.3.0", arch="aarch64", python="3.11", format="wheel")),
    # driver / firmware: host only, no slot
    ("Ascend-hdk-910b-npu-driver_25.0.rc1.1_linux-aarch64.run", F(component="driver", slot=None, version="25.0.rc1.1", arch="aarch64", chip="910b", format="run")),
    ("Ascend-hdk-910b-npu-driver_25.0.rc1.1_linux-x86-64.run", F(component="driver", slot=None, version="25.0.rc1.1", arch="x86_64", chip="910b", format="run")),
    ("Ascend-hdk-910b-npu-firmware_7.5.0.3.220.run", F(component="firmware", slot=None, version="7.5.0.3.220", chip="910b", format="run")),
    # requirements and other wheels
    ("requirements.txt", F(component="requirements", slot="requirements", version="", format="txt")),
    ("requirements-extra.txt", F(component="requirements", slot="requirements", version="", format="txt")),
    ("numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", F(component="wheel", slot=None, version="1.26.4", arch="x86_64", python="3.11", format="wheel")),
    ("six-1.16.0-py2.py3-none-any.whl", F(component="wheel", slot=None, version="1.16.0", format="wheel")),
]

UNKNOWN = [
    "Ascend-cann-toolkit.run", "cann-toolkit_8.0.RC2_linux-aarch64.run", "Ascend-cann-toolkit_8.0.RC2_linux-ppc64le.run",
    "Ascend-cann-toolkit_8.0.RCx_linux-aarch64.run", "Ascend-cann-kernels_8.0.RC2_linux.run",
    "torch-2.1.0-cp310-cp310-win_amd64.whl", "torch-2.1.0-cp310-cp310-macosx_11_0_arm64.whl", "not-a-wheel.whl",
    "notes.txt", "Ascend-mindie_2.3.0_linux-aarch64_abi2.run", "Ascend-mindie-atb-models_1.0.RC1_linux-x86_torch2.1.0.tar.gz",
    "Ascend-cann-toolkit_8.5.0_linux-aarch64.run.part",
]


@pytest.mark.parametrize("name,fields", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_reference_names_parse(name, fields):
    found = identify(name, NAMES)
    assert found is not None, name
    expected = {**dict(arch=None, chip=None, python=None, torch=None, abi=None, prerelease=False), **fields}
    assert {k: getattr(found, k) for k in expected} == expected


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_names_are_not_guessed(name):
    assert identify(name, NAMES) is None


@pytest.mark.parametrize("text,arch", [("x86", "x86_64"), ("x86-64", "x86_64"), ("x86_64", "x86_64"), ("amd64", "x86_64"),
                                       ("linux/amd64", "x86_64"), ("arm64", "aarch64"), ("aarch64", "aarch64"),
                                       ("linux/arm64/v8", "aarch64"), ("ppc64le", None), ("", None)])
def test_arch_normalised(text, arch):
    assert normalise_arch(text) == arch


def test_chip_spelling():
    assert [normalise_chip(c) for c in ("a3", "A3", "910B", "310p")] == ["A3", "A3", "910b", "310p"]


# -- versions ----------------------------------------------------------------------------------

ORDERED = ["2.0.T3", "2.0.alpha1", "2.0.0", "7.0.RC1", "8.0.RC2", "8.0.RC3.alpha003", "8.0.RC3", "8.0.0", "8.3.RC1",
           "8.5.0", "9.0.0-beta.1", "9.0.0", "25.0.rc1", "25.0.rc1.1", "25.0.rc2"]


def test_reference_order():
    assert sorted(reversed(ORDERED), key=version_key) == ORDERED
    assert version_key("2.1.0") < version_key("2.1.0+cpu") < version_key("2.1.0.post13") < version_key("2.1.1")


def test_prerelease_flag():
    assert [v for v in ORDERED + ["2.1.0.post13"] if is_prerelease(v)] == ["2.0.T3", "2.0.alpha1", "8.0.RC3.alpha003", "9.0.0-beta.1"]


def test_spellings_are_equal():
    assert same_version("8.0.RC2", "8.0.rc2") and same_version("8.0.RC2", "8.0rc2") and same_version("2.6", "2.6.0")
    assert same_version("9.0.0-beta.1", "9.0.0b1") and not same_version("8.0.RC2", "8.0.RC3")
    assert parse_version("banana") is None and parse_version("8.0.RCx") is None


releases = st.lists(st.integers(0, 30), min_size=1, max_size=4)
PEP440_PRE = st.one_of(st.none(), st.tuples(st.sampled_from(["a", "b", "rc"]), st.integers(0, 20)))


@st.composite
def pep440(draw):
    """Versions both spellings can express: release[{a|b|rc}N][.postN][.devN-free][+local]."""
    text = ".".join(map(str, draw(releases)))
    pre = draw(PEP440_PRE)
    if pre:
        text += f"{pre[0]}{pre[1]}"
    post = draw(st.one_of(st.none(), st.integers(0, 20)))
    if post is not None:
        text += f".post{post}"
    if draw(st.booleans()):
        text += "+" + draw(st.sampled_from(["cpu", "cu121", "1", "abc.5"]))
    return text


def _sign(x) -> int:
    return (x > 0) - (x < 0)


@given(pep440(), pep440())
def test_agrees_with_pep440(a, b):
    va, vb = Version(a), Version(b)
    expected = _sign((va > vb) - (va < vb))
    ka, kb = version_key(a), version_key(b)
    assert _sign((ka > kb) - (ka < kb)) == expected, (a, b)


@given(releases, st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20))
def test_ascend_stages_order(release, t, alpha, beta, rc, post):
    r = ".".join(map(str, release))
    chain = [f"{r}.T{t}", f"{r}.alpha{alpha}", f"{r}-beta.{beta}", f"{r}.RC{rc}.alpha{alpha}", f"{r}.RC{rc}",
             f"{r}.RC{rc}.1", f"{r}.RC{rc + 1}", r, f"{r}.post{post}"]
    keys = [version_key(v) for v in chain]
    assert keys == sorted(keys), chain
    bigger = ".".join(map(str, release[:-1] + [release[-1] + 1]))
    assert version_key(f"{r}.post{post}") < version_key(bigger)


@given(st.lists(st.sampled_from(ORDERED + ["2.1.0.post13", "2.1.0+cpu", "8.0", "8.0.0.0"]), min_size=2, max_size=8))
def test_key_is_a_total_order(versions):
    ordered = sorted(versions, key=version_key)
    assert all(version_key(a) <= version_key(b) for a, b in zip(ordered, ordered[1:]))


@pytest.mark.parametrize("name", [
    "foo-1.0-py3-none$(touch${IFS}PWNED)-any.whl",
    "foo-1.0-py3-none-any;id.whl",
    "foo-1.0-py3-none-linux x86_64.whl",
    "foo-1.0-py3-NONE\n-any.whl",
    "foo-1.0-py3-none-any`id`.whl",
])
def test_wheel_tags_must_be_tags(name):
    assert identify(name, NAMES) is None


def test_safe_names():
    from ascend_build.catalog.naming import is_safe_name

    assert is_safe_name("torch_npu-2.1.0.post13-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl")
    assert is_safe_name("torch-2.1.0+cpu-cp310-cp310-linux_x86_64.whl")
    for name in ("-rf.run", "a b.run", "a$(x).run", "a\n.run", "昇腾.run", "a;b.whl", "", "a/b.run"):
        assert not is_safe_name(name), name
