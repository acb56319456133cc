"""Native install (issue 24): which stages, which helper image, the Dockerfile and scripts it
renders, and native_stage.py's `place` against pip's own install into the same scheme."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from ascend_build import native_install, native_stage
from ascend_build.native_install import NativeInstall, candidates, decide, stage_wheels
from ascend_build.plan import plan_for
from ascend_build.render import context_files
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for

from test_plan import assert_golden, normalise

ARM = "localhost/ascend-build-base:bookworm-arm64"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("native") / "w"
    scaffold(root, demo=True, arch="aarch64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


def arm_plan(workdir, target="pta", delivery="http", engine=None):
    return plan_for(settings_for(workdir, Options(target=target, delivery=delivery, base_image=ARM, platform="linux/arm64"), engine))


def native_of(plan, platform="$BUILDPLATFORM"):
    stages, why = stage_wheels(plan, {}, [])
    assert not why
    return NativeInstall("localhost/ascend-build-base:bookworm", platform, "3.11", ("manylinux_2_17_aarch64",),
                         tuple(stages.items()), *native_install.byte_tools(plan, "x86_64", stages))


def test_candidates_drop_the_arch_word_then_try_python_images():
    spec = SimpleNamespace(native_image=None, base_images={})
    assert candidates(spec, ARM, "x86_64", "aarch64", "3.11") == [
        "localhost/ascend-build-base:bookworm", "python:3.11-slim", "python:3.11"]
    assert candidates(spec, "arm64v8/ubuntu:22.04", "x86_64", "aarch64", "3.10")[0] == "amd64/ubuntu:22.04"
    assert candidates(spec, "reg:5000/a/b:aarch64-py3.11", "x86_64", "aarch64", "3.11")[0] == "reg:5000/a/b:py3.11"
    spec = SimpleNamespace(native_image=None, base_images={"x86_64": "mine:x86", "aarch64": ARM})
    assert candidates(spec, ARM, "x86_64", "aarch64", "3.11")[0] == "mine:x86"
    assert candidates(SimpleNamespace(native_image="given:1", base_images={}), ARM, "x86_64", "aarch64", "3.11") == ["given:1"]


def test_pta_wheels_are_chosen_mindie_never(workdir):
    plan = arm_plan(workdir, "mindie")
    stages, why = stage_wheels(plan, {}, [])
    assert set(stages) == {"pta"} and not why        # cann: its tools' wheels when the folder has them (e2e)
    assert {p.name.split("-")[0] for p in stages["pta"]} >= {"torch", "torch_npu"}
    assert all(p.format == "wheel" for wheels in stages.values() for p in wheels)
    assert stage_wheels(plan, {"pta": "#!/bin/bash\n"}, [])[1] == ["stage pta: install-scripts/install_pta.sh replaces its script"]
    present = stage_wheels(plan, {}, ["torch"])
    assert "pta" not in present[0] and "pip would replace it" in present[1][0]


def test_the_mindspore_stage_installs_its_wheels_natively_too(tmp_path):
    root = tmp_path / "ms"
    scaffold(root, demo=True, arch="aarch64", cann="9.0.0", chip="910b", python="3.11", filler="4KiB", force=False,
             more=("mindspore",))
    plan = arm_plan(root, "mindspore")
    stages, why = stage_wheels(plan, {}, [])
    assert not why and "mindspore" in stages
    assert {p.name.split("-")[0] for p in stages["mindspore"]} >= {"mindspore"}
    plan.native = native_of(plan)
    files = context_files(plan)
    assert "AS mindspore-native" in files["Dockerfile"] and "COPY --from=mindspore-native /ab-staged/ /" in files["Dockerfile"]
    assert ".whl=" not in files["Dockerfile"].split("AS mindspore\n")[1]
    served = files["scripts/install_mindspore.sh"]
    assert "ab_pip() {" in served and re.search(r"native-stage\.py check( \S+)* mindspore", served), served


def test_requirements_with_options_keep_the_stage_emulated(workdir, tmp_path):
    plan = arm_plan(workdir)
    req = next(p for p in plan.stage("pta").files if p.format == "txt")
    text = Path(req.path).read_text()
    try:
        Path(req.path).write_text(text + "-r other.txt\n")
        assert "more than requirements" in stage_wheels(plan, {}, [])[1][0]
        Path(req.path).write_text(text + "--find-links /x\n")
        assert not stage_wheels(plan, {}, [])[1]
    finally:
        Path(req.path).write_text(text)


class FakeEngine:
    native_stages, build_platform_arg = True, True
    binary = "fake"

    def __init__(self, images):
        self.images = images          # name -> (arch, python version or None, packages)

    def find_image(self, image):
        if image not in self.images:
            return None
        return {"Id": f"sha256:{id(self)}{abs(hash(image))}", "Architecture": self.images[image][0]}

    def run_container(self, image, command, **kw):
        arch, version, packages = self.images[image]
        out = json.dumps({"version": version, "glibc": "glibc 2.36", "packages": packages})
        return subprocess.CompletedProcess([], 0, out + "\n", "")


def test_decide_picks_the_host_image_with_the_same_python_or_says_why_not(workdir, monkeypatch):
    monkeypatch.delenv(native_install.ENV, raising=False)
    monkeypatch.setattr(native_install, "host_arch", lambda: "x86_64")
    plan, said = arm_plan(workdir), []
    good = FakeEngine({"localhost/ascend-build-base:bookworm": ("amd64", "3.11.2", {"pip": "23.0.1"})})
    native = decide(plan, good, said.append, {})
    assert native and native.image == "localhost/ascend-build-base:bookworm" and native.platform == "$BUILDPLATFORM"
    assert set(dict(native.stages)) == {"pta"} and native.python == "3.11"
    assert "manylinux_2_17_aarch64" in native.tags and "linux_aarch64" in native.tags
    assert native.tools == ("cann", "pta") and ("/tmp/ab-tools/loader", "/lib64") in native.tool_mounts
    assert said[-1].startswith("native install: cann, pta use localhost/ascend-build-base:bookworm's byte tools")
    assert said[-1].endswith("and its python3 for pip check's rule")
    assert native.single_wheels == ()          # cann and pta: no ab_pip of their own
    said.clear()
    wrong = FakeEngine({"localhost/ascend-build-base:bookworm": ("amd64", "3.10.12", {"pip": "22"})})
    assert decide(plan, wrong, said.append, {}) is None
    assert "no linux/amd64 image with Python 3.11" in said[-1] and "Python 3.10" in said[-1] and "native_image" in said[-1]
    said.clear()
    monkeypatch.setenv(native_install.ENV, "off")
    assert decide(plan, good, said.append, {}) is None and "off" in said[-1]
    native_plan = plan_for(settings_for(workdir, Options(target="pta", base_image="localhost/ascend-build-base:bookworm")))
    assert decide(native_plan, good, said.append, {}) is None       # this host's arch: nothing to do


def test_the_dockerfile_gets_a_scheme_stage_and_a_helper_per_stage(workdir):
    plan = arm_plan(workdir)
    emulated = context_files(plan)
    plan.native = native_of(plan)
    files = context_files(plan)
    assert_golden("pta-native-http-debian.Dockerfile", normalise(files["Dockerfile"]))
    text = files["Dockerfile"]
    assert "FROM --platform=$BUILDPLATFORM localhost/ascend-build-base:bookworm AS pta-native" in text
    assert "COPY --from=pta-native /ab-staged/ /" in text and "cann-native" not in text
    pta_run = text.split("AS pta\n")[1]
    assert ".whl=" not in pta_run and "requirements.txt=" in pta_run
    assert files["scripts/native-stage.py"] == Path(native_stage.__file__).read_text()
    assert "--platform manylinux_2_17_aarch64" in files["scripts/native/install_pta.sh"]
    assert "--no-deps" in files["scripts/native/install_pta.sh"] and "--target" in files["scripts/native/install_pta.sh"]
    assert "native-stage.py settle" not in files["scripts/native/install_pta.sh"]    # the next step's, once native-scheme answered
    assert files["scripts/install_pta.sh"] != emulated["scripts/install_pta.sh"]
    assert "ab_pip() {" in files["scripts/install_pta.sh"] and "pip check" in files["scripts/install_pta.sh"]
    for name in emulated:
        if name not in ("Dockerfile", "scripts/install_pta.sh", "scripts/install_cann.sh"):
            assert files[name] == emulated[name], name
    dockerfile_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"native-{os.getpid()}.Dockerfile"
    dockerfile_path.write_text(text)
    try:
        lint = subprocess.run([str(Path(sys.executable).parent / "hadolint"), "--no-color", "--ignore", "DL3008",
                               "--ignore", "DL3033", "--ignore", "DL3041", str(dockerfile_path)], capture_output=True, text=True)
    finally:
        dockerfile_path.unlink()
    assert lint.returncode == 0, lint.stdout + lint.stderr
    for script in ("scripts/install_pta.sh", "scripts/native/install_pta.sh", "scripts/install_cann.sh"):
        assert subprocess.run(["bash", "-n"], input=files[script], text=True).returncode == 0, script


def test_the_base_images_pip_is_asked_once_where_it_puts_files(workdir, tmp_path, monkeypatch):
    """When the base stage installs no OS package, its python3 and pip are the base image's: that pip's
    answer (native-stage.py scheme) is asked once per image id, goes into the context, and no stage
    native-scheme asks it under emulation. The base stage installs packages (the probe's test holds:
    exit 3), or the image does not answer: the stage asks."""
    import dataclasses

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    plan = arm_plan(workdir)
    calls, outcome = [], {"code": 0}
    answer = {**{k: "/usr/local/lib/python3.11/dist-packages" for k in native_install.SCHEME_PATHS}, "version": "3.11",
              "dirs": {"/usr": [0o755, 0, 0]}}

    class Engine:
        def find_image(self, image):
            return {"Id": "sha256:" + "a" * 64, "Architecture": "arm64"}

        def run_container(self, image, command, **how):
            calls.append((image, list(command), how))
            return subprocess.CompletedProcess([], outcome["code"], "noise\n" + json.dumps(answer) + "\n", "")

    said = []
    text = native_install.image_scheme(plan, Engine(), said.append)
    assert json.loads(text) == answer and len(calls) == 1 and "once per image" in said[0]
    assert native_install.image_scheme(plan, Engine(), said.append) == text and len(calls) == 1      # cached
    image, (flag, script), how = calls[0]
    assert image == ARM and flag == "-c" and how["entrypoint"] == "sh" and how["flags"] == ["--platform", "linux/arm64"]
    assert script.startswith("if ! dpkg -s python3 python3-pip wget ca-certificates >/dev/null 2>&1; then exit 3; fi; "
                             "exec python3 -c ")
    forced = subprocess.run(["sh", "-c", script.replace(script[3:script.index("; then")], "false", 1)
                             .replace("exec python3 ", f"exec {shlex.quote(sys.executable)} ", 1)],
                            capture_output=True, text=True)          # the script as the image's sh runs it, with this python
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["version"] == "%d.%d" % sys.version_info[:2]
    plan.native = dataclasses.replace(native_of(plan), scheme=text)
    files = context_files(plan)
    assert files["scripts/native/scheme.json"] == text and "AS native-scheme" not in files["Dockerfile"]
    assert "COPY scripts/native/scheme.json /opt/ascend-build/scheme.json" in files["Dockerfile"]
    # known before the build: the helper places the files there in its one step (no settle step of its own)
    helper = files["Dockerfile"].split(" AS pta-native\n")[1].split("\nFROM ")[0]
    assert helper.index("COPY scripts/native/scheme.json") < helper.index("run-stage.sh pta") and "RUN python3" not in helper
    assert ("native-stage.py settle /tmp/ab-native /ab-staged /opt/ascend-build/guess.json /opt/ascend-build/scheme.json"
            in files["scripts/native/install_pta.sh"])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    outcome["code"] = 3
    assert native_install.image_scheme(plan, Engine(), said.append) == "" and len(calls) == 2
    assert native_install.image_scheme(plan, Engine(), said.append) == "" and len(calls) == 2      # remembered too
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "third"))
    outcome["code"] = 125
    assert native_install.image_scheme(plan, Engine(), said.append) == "" and len(calls) == 3
    assert native_install.image_scheme(plan, Engine(), said.append) == "" and len(calls) == 4      # asked again next time


@pytest.mark.parametrize("printed", ["[]", "not json", '{"purelib": "relative/path"}', "SCHEME:version=3",
                                     "SCHEME:dirs=[1]", "SCHEME:executable=null"])
def test_an_answer_that_is_no_scheme_is_neither_used_nor_kept(workdir, tmp_path, monkeypatch, printed):
    """What the base image printed, or the cache holds, must be a scheme as native-stage.py writes it (the
    helper's settle reads it); else stage native-scheme asks in the build, and the image is asked again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    good = {**{k: "/usr/local/lib/python3.11/dist-packages" for k in native_install.SCHEME_PATHS}, "version": "3.11",
            "dirs": {"/usr": [0o755, 0, 0]}}
    if printed.startswith("SCHEME:"):
        key, value = printed[len("SCHEME:"):].split("=")
        printed = json.dumps({**good, key: json.loads(value)})
    plan, calls, shown = arm_plan(workdir), [], {"text": printed}

    class Engine:
        def find_image(self, image):
            return {"Id": "sha256:" + "b" * 64}

        def run_container(self, image, command, **how):
            calls.append(command)
            return subprocess.CompletedProcess([], 0, shown["text"] + "\n", "")

    assert native_install.image_scheme(plan, Engine(), lambda text: None) == ""
    assert native_install.image_scheme(plan, Engine(), lambda text: None) == "" and len(calls) == 2
    assert native_install.SCHEMES.entries() == {}
    shown["text"] = json.dumps(good)
    assert json.loads(native_install.image_scheme(plan, Engine(), lambda text: None)) == good and len(calls) == 3
    (key,) = native_install.SCHEMES.entries()
    native_install.SCHEMES.remember(key, printed)              # a cache that holds something else is read the same way
    shown["text"] = printed
    assert native_install.image_scheme(plan, Engine(), lambda text: None) == "" and len(calls) == 4


def test_podman_names_the_host_platform(workdir):
    plan = arm_plan(workdir, delivery="mount")
    plan.native = native_of(plan, "linux/amd64")
    text = context_files(plan)["Dockerfile"]
    assert "FROM --platform=linux/amd64 localhost/ascend-build-base:bookworm AS pta-native" in text
    assert "--mount=type=bind,source=pkgs/pta,target=/tmp/ascend-pkgs/pta bash /opt/ascend-build/run-stage.sh pta mount" in text



def test_the_cache_epoch_is_declared_in_the_stages_from_an_image_only(workdir):
    """After `build --no-cache`: base and each native helper (FROM an image) declare it; every other
    stage derives from them. Without an epoch the Dockerfile is unchanged."""
    plan = arm_plan(workdir)
    plan.native = native_of(plan)
    before = context_files(plan)["Dockerfile"]
    plan.cache_epoch = "0123456789ab"
    text = context_files(plan)["Dockerfile"]
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    declared = [s.split("\n")[0].split()[-1] for s in stages if s.split("\n")[1] == "ARG AB_CACHE_EPOCH=0123456789ab"]
    assert declared == ["base", "native-tools", "pta-native"] and text.count("AB_CACHE_EPOCH") == 3
    assert text.replace("ARG AB_CACHE_EPOCH=0123456789ab\n", "") == before



def test_a_capture_build_runs_the_later_stages_helpers_beside_it(workdir):
    """cann's set_env.sh capture builds pta's helper too (on the host's CPU, while cann's installers
    run under emulation), through a last stage that mounts it; its key stays the plain prefix's."""
    from ascend_build.render import WARM_STAGE, capture_prefix, dockerfile

    plan = arm_plan(workdir, target="mindie")
    plan.native = native_of(plan)
    text, target = capture_prefix(plan, {}, "cann")
    assert target == WARM_STAGE
    plain = dockerfile(plan, upto="cann")
    assert "pta-native" not in plain and "FROM base AS pta" not in text and "AS mindie" not in text
    helper = text[text.index("AS pta-native"):text.index(f"AS {WARM_STAGE}")]
    assert helper.count("RUN ") == 2 and "torch_npu-" in helper
    assert text.endswith(f"FROM cann AS {WARM_STAGE}\n"
                         f"COPY --from=pta-native {native_install.GUESS} /tmp/ab-warm/pta-native.json\n")
    whole = dockerfile(plan, captured={"cann": {}})      # cann as the whole build has it (no RUN rmdir): its cache serves both
    cann = text[text.index(" AS cann\n"):text.index("\n\n", text.index(" AS cann\n"))]
    assert cann in whole and "rmdir" not in cann and whole.count("RUN rmdir ") == 1
    captured = {"cann": {"A": "1"}}           # no stage after mindie: its capture builds the plain prefix
    assert capture_prefix(plan, captured, "mindie") == (dockerfile(plan, captured=captured, upto="mindie"), "mindie")
    plan.native = None
    assert capture_prefix(plan, {}, "cann") == (dockerfile(plan, upto="cann"), "cann")

def test_each_helper_starts_after_the_one_before_it(workdir):
    """BuildKit runs every stage it can at once: the first helper, which the emulated stages wait for,
    gets the CPUs to itself; the next one COPYs its guess.json first (content the same in every build)."""
    plan = arm_plan(workdir)
    wheels = native_of(plan).wheels("pta")
    plan.native = NativeInstall("localhost/ascend-build-base:bookworm", "$BUILDPLATFORM", "3.11", ("manylinux_2_17_aarch64",),
                                (("cann", wheels[:1]), ("pta", wheels[1:])))
    text = context_files(plan)["Dockerfile"]
    first, second = text[text.index("AS cann-native"):text.index("AS cann\n")], text[text.index("AS pta-native"):]
    assert "COPY --from=" not in first.split("RUN ")[0]
    assert second.split("\n")[2] == f"COPY --from=cann-native {native_install.GUESS} /tmp/ab-after-cann-native.json"
    assert text.index("AS cann-native") < text.index("AS pta-native")


def test_the_stages_that_unpack_installers_mount_the_hosts_byte_tools(workdir):
    """cann (.run files) mounts stage native-tools while it installs, then drops the mount points;
    pta does too, whose wheels the host's python3 checks (or the image's pip installs); only a
    Debian-family image on an x86_64 host gets them."""
    plan = arm_plan(workdir, target="mindie")
    native = stage_wheels(plan, {}, [])[0]
    tools, mounts = native_install.byte_tools(plan, "x86_64", native)
    assert tools == ("cann", "pta", "mindie") and set(native) == {"pta"}
    assert native_install.byte_tools(plan, "x86_64", {})[0] == ("cann", "pta", "mindie")     # pta's wheels installed emulated
    assert dict(mounts) == {"/tmp/ab-tools": "/tmp/ab-tools", "/tmp/ab-tools/loader": "/lib64",
                            "/tmp/ab-tools/lib": "/usr/lib/x86_64-linux-gnu"}
    assert native_install.byte_tools(plan, "aarch64", native) == ((), ())
    plan.native = native_of(plan)
    text = context_files(plan)["Dockerfile"]
    assert text.count(" AS native-tools\n") == 1 and text.index(" AS native-tools") < text.index(" AS cann")
    assert "RUN python3 /opt/ascend-build/native-stage.py tools /tmp/ab-tools" in text
    for stage in ("cann", "pta", "mindie"):        # the mount points: removed once, in the last stage
        body = text.split(f" AS {stage}\n")[1].split("\nFROM ")[0]
        assert "--mount=type=bind,from=native-tools,source=/tmp/ab-tools/loader,target=/lib64" in body
        assert ("RUN rmdir /tmp/ab-tools /lib64 /usr/lib/x86_64-linux-gnu 2>/dev/null || true" in body) == (stage == "mindie")
    served = context_files(plan)["scripts/install_pta.sh"]
    assert "/tmp/ab-tools/python/bin/python3.11 -I -S /opt/ascend-build/native-stage.py check --image" in served
    euler = plan_for(settings_for(workdir, Options(target="cann", base_image="openeuler/openeuler:22.03", platform="linux/arm64")))
    assert native_install.byte_tools(euler, "x86_64", {}) == ((), ())


def test_a_stage_that_pip_installs_one_wheel_runs_the_images_pip_on_the_hosts_python3(tmp_path, monkeypatch):
    """MindIE 1.0's stage pip-installs the ATB tarball's atb_llm wheel itself: its ab_pip of one wheel runs the
    image's pip on the build host's python3 (native-pip.sh, with the base image's scheme), and so does the pip
    install its .run runs (python3 shim); cann, which pip-installs nothing here, and the stages the helpers serve
    are left alone. Where the image's pip puts files: the base
    image's answer (build context), else stage native-scheme's."""
    monkeypatch.delenv(native_install.ENV, raising=False)
    monkeypatch.setattr(native_install, "host_arch", lambda: "x86_64")
    root = tmp_path / "w"
    scaffold(root, demo=True, arch="aarch64", cann="8.0.RC2", chip="910b", python="3.11", filler="4KiB", force=False)
    plan, said = arm_plan(root, "mindie"), []
    good = FakeEngine({"localhost/ascend-build-base:bookworm": ("amd64", "3.11.2", {"pip": "23.0.1"})})
    native = decide(plan, good, said.append, {})
    assert native.single_wheels == ("mindie",) and dict(native.stages).keys() == {"pta"}
    assert [s.name for s in plan.stages if native_install.AB_PIP.search(s.script)] == ["pta", "mindie"]
    for scheme, copied in (('{"purelib": "/usr/local/lib/python3.11/dist-packages"}', native_install.SCHEME_CONTEXT),
                           ("", f"--from=native-scheme {native_install.SCHEME_FILE}")):
        plan.native = replace(native, scheme=scheme)     # the base image's answer, else its base stage's (under QEMU)
        files = context_files(plan)
        mindie = files["scripts/install_mindie.sh"]
        assert mindie.index(". /opt/ascend-build/lib.sh\n") < mindie.index("ab_pip() {") < mindie.index('ab_pip "$wheel"')
        assert ("/tmp/ab-tools/python/bin/python3.11 -I -S /opt/ascend-build/native-stage.py install \"$probe\" "
                "/opt/ascend-build/scheme.json /tmp/ab-native \"$1\" ") in mindie and " linux_aarch64" in mindie
        body = files["Dockerfile"].split(" AS mindie\n")[1]
        assert "COPY scripts/native-stage.py /opt/ascend-build/native-stage.py" in body
        assert f"COPY {copied} /opt/ascend-build/scheme.json" in body
        assert ("FROM base AS native-scheme" in files["Dockerfile"]) == (not scheme)
        assert "native-stage.py install" not in files["scripts/install_cann.sh"] + files["scripts/install_pta.sh"]
        # its .run pip-installs its bundled wheel: python3 is the shim while it runs
        assert mindie.index("ab_install() {") < mindie.index("ab_install mindie ")
        assert "/opt/ascend-build/native-stage.py pip \"$real\" \"${LC_CTYPE+set}\" /opt/ascend-build/scheme.json" in mindie


def test_native_stage_tools_copies_the_byte_tools_their_libraries_and_loader(tmp_path, monkeypatch):
    """On this Debian host: the programs of the tool packages it has (a package it lacks is left out),
    never uname or stdbuf; every library ldd names; the versions as dpkg-query gives them."""
    if not (shutil.which("dpkg-query") and shutil.which("ldd")):
        pytest.skip("needs dpkg-query and ldd (a Debian-family host)")
    monkeypatch.setattr(native_stage, "TOOL_PACKAGES", native_stage.TOOL_PACKAGES + ("ascend-build-no-such-package",))
    installed = [p for p in native_stage.TOOL_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode == 0]
    assert "coreutils" in installed and "ascend-build-no-such-package" not in installed
    out = tmp_path / "tools"
    assert native_stage.tools(str(out)).endswith(f"byte tools of this CPU in {out}")
    programs = {p.name for p in (out / "bin").iterdir()}
    assert {"tar", "gzip", "sha256sum", "sed", "grep", "find", "xargs", "cmp", "cp", "dd"} <= programs
    assert not programs & {"uname", "arch", "nproc", "stdbuf", "bash", "sh", "python3", "dpkg"}
    needed = subprocess.run(["ldd", str(out / "bin" / "tar"), str(out / "dpkg-query")], capture_output=True, text=True).stdout
    for name in re.findall(r"^\s*(\S+) => /", needed, flags=re.M):
        assert (out / "lib" / name).is_file(), name
    assert [p.name for p in (out / "loader").iterdir()] and (out / "packages").read_text().split() == installed
    versions = (out / "versions").read_text().splitlines()
    assert [line.split()[0] for line in versions] == sorted(installed) and all(len(v.split()) == 2 for v in versions)
    loader = next((out / "loader").iterdir())         # this python3, on its own copies: the prefix it finds is its copy's
    python = out / "python" / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    ran = subprocess.run([str(loader), "--library-path", str(out / "lib"), str(python), "-I", "-S", "-c",
                          "import sys, importlib.metadata, json, email.parser; print(sys.prefix)"], capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout.strip() == str(out / "python"), ran.stderr
    assert not (out / "python" / "lib" / python.name / "test").exists()
    sample = tmp_path / "x"
    sample.write_bytes(b"abc")
    shown = subprocess.run([str(out / "bin" / "sha256sum"), str(sample)], capture_output=True, text=True)
    assert shown.stdout.split()[0] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_native_stage_tools_without_dpkg_leaves_the_image_its_own(tmp_path, monkeypatch):
    """A helper image without dpkg-query (not Debian-family): the mount points, no dpkg-query, exit 0."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "tools"
    assert native_stage.main(["tools", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"bin", "lib", "loader"}


@pytest.mark.parametrize("same", [True, False])
def test_run_stage_puts_the_byte_tools_first_only_where_the_versions_agree(tmp_path, same):
    """run-stage.sh's check, on a stand-in tools folder: a dpkg-query that prints the image's versions."""
    from ascend_build.components import render_script

    script = render_script("run-stage.sh.j2")
    check = script[script.index("if [ -x /tmp/ab-tools/dpkg-query ]"):script.index('mkdir -p "$dir"')]
    tools = tmp_path / "ab tools"
    (tools / "bin").mkdir(parents=True)
    (tools / "packages").write_text("gzip tar\n")
    (tools / "versions").write_text("gzip 1.12-1\ntar 1.34\n")
    (tools / "dpkg-query").write_text("#!/bin/sh\nprintf 'gzip 1.12-1\\ntar %s\\n' " + ("1.34" if same else "1.35") + "\n")
    (tools / "dpkg-query").chmod(0o755)
    shell = ("ab_say() { echo \"said: $*\"; }\n" + check.replace("/tmp/ab-tools", "'" + str(tools) + "'")
             + 'echo "PATH=$PATH"\n')
    shown = subprocess.run(["bash", "-c", shell], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.split("PATH=")[1].split(":")[0]
    assert (first == f"{tools}/bin") is same
    assert ("the build host's (gzip tar)" if same else "the image's (the build host's gzip tar are other versions") in shown.stdout


# -- native_stage.py: `pip install --target` + place == pip's own install into that scheme ------
def make_wheel(folder: Path, purelib: bool = True, modules: int = 0, requires=()) -> Path:
    """A wheel with a package, a console script, a data file, a `#!python` script and a header
    (and `modules` more modules; `requires`: its Requires-Dist)."""
    wheel = folder / "demo_pkg-1.0-py3-none-any.whl"
    files = {
        "demo_pkg/__init__.py": "VALUE = 1\n",
        "demo_pkg/sub/mod.py": "def f():\n    return 2\n",
        "demo_pkg-1.0.data/data/share/demo/readme.txt": "data\n",
        "demo_pkg-1.0.data/data/share/demo/helper.py": "X = 3\n",
        "demo_pkg-1.0.data/scripts/demo-tool": "#!python\nprint('tool')\n",
        "demo_pkg-1.0.data/headers/demo.h": "int demo;\n",
        "demo_pkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n"
                                           + "".join(f"Requires-Dist: {r}\n" for r in requires),
        "demo_pkg-1.0.dist-info/WHEEL": f"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: {str(purelib).lower()}\nTag: py3-none-any\n",
        "demo_pkg-1.0.dist-info/entry_points.txt": "[console_scripts]\ndemo = demo_pkg:VALUE\n",
        **{f"demo_pkg/gen/m{n}.py": f"N = {n}\n" for n in range(modules)},
    }
    import base64
    import hashlib
    record = []
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=")
            record.append(f"{name},sha256={digest},{len(text)}")
        z.writestr("demo_pkg-1.0.dist-info/RECORD", "\n".join(record + ["demo_pkg-1.0.dist-info/RECORD,,"]) + "\n")
    return wheel


def files_of(root: Path):
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            out[str(path.relative_to(root))] = data[16:] if path.suffix == ".pyc" else data
    return out


@pytest.mark.skipif(subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0,
                    reason="no pip in the test interpreter")
@pytest.mark.parametrize("modules", [0, 160])        # 160: compiled by two processes
def test_place_gives_what_pip_installs_into_the_scheme(tmp_path, monkeypatch, modules):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    wheel = make_wheel(tmp_path, modules=modules)
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check", "-q"]
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
    prefix = tmp_path / "pfx"
    subprocess.run([*pip, "--prefix", str(prefix), str(wheel)], check=True, env=env)
    lib = next(prefix.glob("lib/python*/site-packages"))
    where = {"purelib": str(lib), "platlib": str(lib), "scripts": str(prefix / "bin"), "data": str(prefix),
             "headers": subprocess.run([sys.executable, "-c", "import os, sys; from pip._internal.locations import get_scheme; "
                                        "print(os.path.dirname(get_scheme('demo-pkg', prefix=sys.argv[1]).headers))", str(prefix)],
                                       capture_output=True, text=True, check=True).stdout.strip(),
             "executable": sys.executable, "version": "%d.%d" % sys.version_info[:2], "dirs": {}}
    home = tmp_path / "home"
    subprocess.run([*pip, "--target", str(home), "--no-compile", str(wheel)], check=True, env=env)
    staging = tmp_path / "staged"
    assert native_stage.place(str(home), str(staging), where) == 1
    expected = files_of(prefix)
    got = files_of(Path(str(staging) + str(prefix)))
    assert sorted(got) == sorted(expected)
    assert any(name.endswith(".pyc") and "share/demo" in name for name in got)     # pip compiles data .py too
    assert sum(name.endswith(".pyc") for name in got) == 3 + modules
    assert {k for k in got if got[k] != expected[k]} == set()
    record = next(Path(str(staging) + str(lib)).glob("demo_pkg-1.0.dist-info/RECORD")).read_text()
    assert "../../../bin/demo," in record and "demo_pkg/__pycache__/__init__" in record


def test_place_points_scripts_at_the_images_python(tmp_path):
    script = tmp_path / "tool"
    script.write_bytes(b"#!" + sys.executable.encode() + b"\nimport x\n")
    assert native_stage.retarget(str(script), sys.executable, "/usr/bin/python3")
    assert script.read_bytes() == b"#!/usr/bin/python3\nimport x\n"
    long = "/" + "x" * 130 + "/python3"
    assert native_stage.retarget(str(script), "/usr/bin/python3", long)
    assert script.read_bytes().startswith(b"#!/bin/sh\n'''exec' " + long.encode())
    assert not native_stage.retarget(str(script), "/other/python3", "/usr/bin/python3")


def test_a_platlib_wheel_goes_where_the_images_pip_puts_platform_libraries(tmp_path):
    wheel = make_wheel(tmp_path, purelib=False)
    home = tmp_path / "home"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "-q", "--target", str(home),
                    "--no-compile", str(wheel)], check=True)
    where = {"purelib": "/usr/local/lib/python3.11/site-packages", "platlib": "/usr/local/lib64/python3.11/site-packages",
             "scripts": "/usr/local/bin", "data": "/usr/local", "headers": "/usr/local/include/python3.11",
             "executable": "/usr/bin/python3", "dirs": {}}
    native_stage.place(str(home), str(tmp_path / "st"), where)
    platlib = tmp_path / "st/usr/local/lib64/python3.11/site-packages"
    assert (platlib / "demo_pkg/__pycache__").is_dir() and not (tmp_path / "st/usr/local/lib").exists()
    record = (platlib / "demo_pkg-1.0.dist-info/RECORD").read_text()
    assert "../../../bin/demo," in record and "../../../share/demo/readme.txt," in record
    assert (tmp_path / "st/usr/local/bin/demo").read_text().startswith("#!/usr/bin/python3\n")
    assert (tmp_path / "st/usr/local/include/python3.11/demo-pkg/demo.h").exists() or \
        (tmp_path / "st/usr/local/include/python3.11/demo_pkg/demo.h").exists()


def test_guess_places_without_the_images_answer_and_settle_places_again_only_if_it_differs(tmp_path, monkeypatch):
    """guess: placed (hard links, the pip --target tree kept as it was: RECORD and the scripts' shebangs
    written anew) where this python3's pip puts files; settle: the same
    files as a placement for the image's answer when that differs, untouched when it is the guess."""
    wheel = make_wheel(tmp_path, modules=3)
    home = tmp_path / "home"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "-q", "--target", str(home),
                    "--no-compile", str(wheel)], check=True)
    pristine = tmp_path / "pristine"
    shutil.copytree(home, pristine)
    version = "%d.%d" % sys.version_info[:2]
    here = {"purelib": "/usr/local/lib/python3.11/site-packages", "platlib": "/usr/local/lib/python3.11/site-packages",
            "scripts": "/usr/local/bin", "data": "/usr/local", "headers": "/usr/local/include/python3.11",
            "executable": "/usr/local/bin/python3", "version": version, "dirs": {}}
    image = dict(here, purelib="/usr/local/lib/python3.11/dist-packages", platlib="/usr/local/lib/python3.11/dist-packages",
                 executable="/usr/bin/python3")
    monkeypatch.setattr(native_stage, "scheme", lambda: here)
    staging, guess, answer = tmp_path / "st", tmp_path / "guess.json", tmp_path / "scheme.json"
    assert native_stage.main(["guess", str(home), str(staging), str(guess)]) == 0
    assert files_of(home) == files_of(pristine)
    staged = staging / "usr/local/lib/python3.11/site-packages/demo_pkg/__init__.py"
    assert staged.stat().st_ino == (home / "demo_pkg/__init__.py").stat().st_ino      # a link, no copy
    assert json.loads(guess.read_text()) == here
    answer.write_text(json.dumps(image))
    assert native_stage.main(["settle", str(home), str(staging), str(guess), str(answer)]) == 0
    expected = tmp_path / "expected"
    native_stage.place(str(pristine), str(expected), image)
    assert files_of(staging) == files_of(expected) and not (staging / "usr/local/lib/python3.11/site-packages").exists()
    assert (staging / "usr/local/bin/demo").read_text().startswith("#!/usr/bin/python3\n")
    answer.write_text(json.dumps(here))
    before = {p: p.stat().st_mtime_ns for p in staging.rglob("*")}
    assert native_stage.settle(str(home), str(staging), here, json.loads(answer.read_text())).endswith("placed already")
    assert {p: p.stat().st_mtime_ns for p in staging.rglob("*")} == before


def dist_info(site: Path, name: str, version: str, *requires: str):
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                         + "".join(f"Requires-Dist: {r}\n" for r in requires))


@pytest.mark.skipif(subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0,
                    reason="no pip in the test interpreter")
def test_check_says_what_pip_check_says_about_those_distributions(tmp_path):
    """The check the served stage runs instead of `pip check` (2 s less under QEMU), against pip check itself
    on the same folder: missing, conflicting, markers (extras and another machine), pre-releases, names
    spelled otherwise; nothing about distributions it was not asked about."""
    site = tmp_path / "site"
    dist_info(site, "Demo.A", "1.0", "demo-b>=2", "Demo_C", "demo-gone", 'demo-x; extra == "fast"',
              'demo-y; platform_machine == "no-such-machine"', "demo-pre>=1.0", "demo-c (<4,>=3)",
              'demo-z; extra == "a" or python_version >= "3"', "demo-w; python_version >= '3' and extra == 'b'",
              'demo-v ; (extra == "c") and os_name == "posix"')
    dist_info(site, "demo-b", "1.0")
    dist_info(site, "demo_c", "3.0")
    dist_info(site, "demo-pre", "1.1rc1")
    dist_info(site, "demo-other", "2.0", "demo-gone-too")
    dist_info(site, "demo-d", "1.0", "demo-c>=5; python_version >= '3'")
    pip = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(site), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert pip.returncode == 1
    ours = {line for line in pip.stdout.splitlines() if line.split()[0] in ("demo-a", "demo-d")}
    assert ours == {"demo-a 1.0 has requirement demo-b>=2, but you have demo-b 1.0.",
                    "demo-a 1.0 requires demo-gone, which is not installed.",
                    "demo-a 1.0 requires demo-z, which is not installed.",
                    "demo-d 1.0 has requirement demo-c>=5; python_version >= \"3\", but you have demo-c 3.0."}
    assert set(native_stage.check(["demo_a", "DEMO-D", "demo-b"], path=[str(site), *sys.path])) == ours
    assert native_stage.check(["demo-b", "demo-c", "not-installed"], path=[str(site)]) == []
    dist_info(site, "demo-e", "1.0", "demo-b >= = 2")
    assert native_stage.check(["demo-e"], path=[str(site)])[0].startswith("demo-e 1.0 has an invalid requirement 'demo-b >= = 2'")


def test_the_build_hosts_python3_checks_with_the_images_path_and_markers(tmp_path, capsys):
    """check --image: the distributions on the path `probe` gave, markers in the image's environment (an
    aarch64 image checked on this CPU), the packaging of the image's pip; probe's environment is packaging's."""
    from packaging.markers import default_environment

    assert native_stage.probe()["env"] == default_environment()
    assert native_stage.probe()["pip"] and "" not in native_stage.probe()["path"]
    site = tmp_path / "site"
    dist_info(site, "demo-a", "1.0", 'demo-arm; platform_machine == "aarch64"', 'demo-x86; platform_machine == "x86_64"',
              "demo-b>=2")
    dist_info(site, "demo-b", "2.0")
    image = tmp_path / "image.json"
    image.write_text(json.dumps({"path": [str(site)], "pip": native_stage.probe()["pip"],
                                 "env": dict(default_environment(), platform_machine="aarch64")}))
    assert native_stage.main(["check", "--image", str(image), "demo_a", "demo-b"]) == 1
    assert capsys.readouterr().out.splitlines() == ["demo-a 1.0 requires demo-arm, which is not installed."]
    dist_info(site, "demo-arm", "1.0")
    assert native_stage.main(["check", "--image", str(image), "demo-a"]) == 0
    # an image without pip (nothing to import its packaging from): exit 3, never this python3's own pip check
    image.write_text(json.dumps({"path": [str(site)], "pip": None, "env": default_environment()}))
    alone = subprocess.run([sys.executable, "-I", "-S", native_stage.__file__, "check", "--image", str(image), "demo-a"],
                           capture_output=True, text=True)
    assert alone.returncode == native_stage.UNCHECKED and "cannot check here (ModuleNotFoundError" in alone.stdout, alone


NO_PIP = "import json, sys; d = json.load(open(sys.argv[1])); d['pip'] = None; json.dump(d, open(sys.argv[1], 'w'))"


@pytest.mark.parametrize("host_runs", [True, False, None, "no pip"])
def test_the_served_stage_checks_with_the_hosts_python3_when_it_runs_else_the_images(tmp_path, host_runs):
    """native-placed.sh's ab_pip, in bash: the host's python3 (here this one, behind a wrapper) checks what
    `probe` of the image's (python3 on PATH) says; a host python3 that does not run (None: is not there), or
    cannot import the image's pip, leaves the check to the image's. Either way a missing requirement fails the stage with pip
    check's words, and no probe file stays."""
    from ascend_build.components import render_script

    site, bin_dir = tmp_path / "site", tmp_path / "bin"
    dist_info(site, "demo-a", "1.0", "demo-gone")
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    host = tmp_path / "host-python"
    host.write_text("#!/bin/sh\n" + {True: f'exec {shlex.quote(sys.executable)} "$@"\n', False: "exit 127\n", None: "",
                                     "no pip": f'[ "$4" != check ] || {shlex.quote(sys.executable)} -c "{NO_PIP}" "$6"\n'
                                               f'exec {shlex.quote(sys.executable)} "$@"\n'}[host_runs])
    for program in (bin_dir / "python3", host):
        program.chmod(0o755)
    if host_runs is None:
        host.unlink()
    snippet = render_script("native-placed.sh.j2", helper="pta-native", names=["demo-a"], checker=native_stage.__file__,
                            host_python=str(host))
    script = ("ab_say() { echo \"say: $*\"; }\nab_fail() { echo \"fail: $*\"; exit 1; }\n" + snippet + "ab_pip x.whl\n")
    ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(site), "TMPDIR": str(tmp_path)})
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert ("say: pip check (by the build host's python3)" in ran.stdout) == bool(host_runs)
    assert ("say: pip check\n" in ran.stdout) == (host_runs is not True)
    assert "fail: pip check: demo-a 1.0 requires demo-gone, which is not installed." in ran.stdout
    assert not (tmp_path / "ab-image.json").exists()


def pip_scheme(prefix: Path) -> dict:
    """Where this python3's pip puts a distribution's files under `prefix` (as native-stage.py scheme says)."""
    answer = subprocess.run([sys.executable, "-c", "import json, os, sys; from pip._internal.locations import get_scheme; "
                             "s = get_scheme('demo-pkg', prefix=sys.argv[1]); print(json.dumps({k: getattr(s, k) for k in "
                             "('purelib', 'platlib', 'scripts', 'data')}, sort_keys=True)); print(os.path.dirname(s.headers))",
                             str(prefix)], capture_output=True, text=True, check=True).stdout.splitlines()
    return dict(json.loads(answer[0]), headers=answer[1], executable=sys.executable, version="%d.%d" % sys.version_info[:2],
                dirs={})


@pytest.mark.skipif(subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0,
                    reason="no pip in the test interpreter")
@pytest.mark.parametrize("case", ["placed", "installed already", "needs more", "pip configured", "other platform"])
def test_install_puts_one_wheel_where_the_images_pip_would_or_leaves_it_to_that_pip(tmp_path, monkeypatch, capsys, case):
    """native-stage.py install (the build host's python3 running the image's pip, in a stage under QEMU): the
    files `pip install` writes (RECORD, shebang, data, header; byte code named as the final path), or exit 3
    with nothing placed when the image's pip has to do it: the distribution is there, a requirement is
    missing, pip is configured (PIP_TARGET), the wheel is for another machine."""
    for key in [k for k in os.environ if k.startswith("PIP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))
    conf = tmp_path / "pip.conf"            # an index, a certificate: harmless; a constraint is not
    conf.write_text("[global]\nindex-url = https://example.invalid/simple\ncert = /x.pem\n[freeze]\nexclude = x\n"
                    + ("[install]\nconstraint = /c.txt\n" if case == "pip configured" else ""))
    monkeypatch.setattr(native_stage, "SITE_PIP_CONF", str(conf))
    site = tmp_path / "site"
    dist_info(site, "demo-dep", "2.0")
    if case == "installed already":
        dist_info(site, "demo_pkg", "0.9")
    wheel = make_wheel(tmp_path, requires=["demo-dep>=2", 'demo-arm; platform_machine == "aarch64"']
                       + (["demo-gone"] if case == "needs more" else []))
    if case == "other platform":
        wheel = wheel.rename(tmp_path / "demo_pkg-1.0-cp311-cp311-linux_aarch64.whl")
    if case == "pip configured":
        monkeypatch.setenv("PIP_TARGET", str(tmp_path / "elsewhere"))
    from packaging.markers import default_environment
    image, scheme = tmp_path / "image.json", tmp_path / "scheme.json"
    image.write_text(json.dumps({"path": [str(site)], "pip": native_stage.probe()["pip"], "env": default_environment()}))
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    scheme.write_text(json.dumps(pip_scheme(ours)))
    status = native_stage.main(["install", str(image), str(scheme), str(tmp_path / "home"), str(wheel), "manylinux2014_x86_64",
                                "linux_x86_64"])
    said = capsys.readouterr().out
    if case != "placed":
        assert status == native_stage.UNCHECKED and not ours.exists(), said
        assert f"native-stage: the image's pip installs {wheel.name} (" in said
        assert {"installed already": "demo-pkg is installed already", "needs more": "requires demo-gone, which is not installed",
                "pip configured": f"pip is configured here (PIP_TARGET, {conf}: constraint)", "other platform": "its pip, run here, failed"}[case] in said
        return
    assert status == 0 and said == f"native-stage: {wheel.name} installed on this CPU by the image's pip (run by the build host's python3)\n", said
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check", "-q",
                    "--prefix", str(theirs), str(wheel)], check=True, env={**os.environ, "PIP_NO_CACHE_DIR": "1"})
    a, b = files_of(ours), files_of(theirs)
    assert sorted(a) == sorted(b) and any(name.endswith(".pyc") for name in a)
    assert {k for k in a if a[k] != b[k] and not k.endswith(".pyc")} == set()
    assert (tmp_path / "home").exists()          # ab_pip removes it (the files in place are links or copies)


@pytest.mark.skipif(subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0,
                    reason="no pip in the test interpreter")
@pytest.mark.parametrize("case", ["placed", "host fails to start", "needs more", "two arguments", "fails midway"])
def test_ab_pip_of_one_wheel_runs_the_images_pip_on_the_hosts_python3_else_the_images(tmp_path, case):
    """native-pip.sh's ab_pip, in bash: one wheel by its path is placed by the host's python3 (here this one,
    behind a wrapper) running the image's pip; the image's pip (ab_pip_image) installs it when that python3
    does not run, when install exits 3 (a requirement is missing) and for anything but one wheel; a failure
    after placing began fails the stage. No probe or HOME stays."""
    from ascend_build.components import render_script

    site, bin_dir, prefix, home = tmp_path / "site", tmp_path / "bin", tmp_path / "prefix", tmp_path / "home"
    dist_info(site, "demo-dep", "2.0")
    wheel = make_wheel(tmp_path, requires=["demo-dep"] + (["demo-gone"] if case == "needs more" else []))
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    run = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import native_stage as n; n.SITE_PIP_CONF = '/nonexistent'; "
           "sys.exit(n.main(sys.argv[1:]))")
    host = tmp_path / "host-python"
    host.write_text("#!/bin/sh\n" + {
        "host fails to start": "exit 127\n",
        "fails midway": '[ "$4" != install ] || exit 1\n',
    }.get(case, "") + f'[ "$4" != install ] || {{ shift 3; exec {shlex.quote(sys.executable)} -c "{run}" '
                      f'{shlex.quote(str(Path(native_stage.__file__).parent))} "$@"; }}\n'
                      f'exec {shlex.quote(sys.executable)} "$@"\n')
    for program in (bin_dir / "python3", host):
        program.chmod(0o755)
    scheme = tmp_path / "scheme.json"
    scheme.write_text(json.dumps(pip_scheme(prefix)))
    snippet = render_script("native-pip.sh.j2", home=str(home), checker=native_stage.__file__, host_python=str(host), shim=False,
                            scheme=str(scheme), tags=["manylinux2014_x86_64", "linux_x86_64"], unchecked=native_stage.UNCHECKED)
    args = f"{shlex.quote(str(wheel))}" + (" --no-deps" if case == "two arguments" else "")
    script = ("ab_say() { echo \"say: $*\"; }\nab_fail() { echo \"fail: $*\"; exit 1; }\n"
              "ab_pip_image() { echo \"image's pip: $*\"; }\n" + snippet + f"ab_pip {args}\necho end\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env={**env, "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(site), "TMPDIR": str(tmp_path),
                              "HOME": str(tmp_path / "user"), "XDG_CONFIG_DIRS": str(tmp_path / "xdg"), "AB_STAGE": "mindie"})
    out = ran.stdout + ran.stderr
    placed = any(prefix.rglob("demo_pkg/__init__.py"))
    if case == "placed":
        assert ran.returncode == 0 and placed and "image's pip:" not in out, out
        assert f"native-stage: {wheel.name} installed on this CPU by the image's pip" in out
    elif case == "fails midway":
        assert ran.returncode == 1 and f"fail: stage mindie: installing {wheel.name} on the build host's CPU failed" in out, out
    else:
        assert ran.returncode == 0 and not placed and f"image's pip: {args}".replace("'", "") in out.replace("'", ""), out
        assert ("requires demo-gone, which is not installed" in out) == (case == "needs more")
    assert not any(p.exists() for p in (tmp_path / "ab-image.json", home))


@pytest.mark.skipif(subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0,
                    reason="no pip in the test interpreter")
@pytest.mark.parametrize("case", ["placed", "needs more", "other option", "host fails to start", "no scheme"])
def test_an_installers_pip_install_of_a_wheel_runs_on_the_hosts_python3_else_the_images(tmp_path, case):
    """native-pip.sh's ab_install: while an installer runs, python3 is a shim. The installer's `python3 -m pip
    install --no-index --no-deps --quiet WHEEL` (MindIE's .run) is placed by the host's python3 (native-stage.py
    pip); the image's python3 gets every other call, and the pip install itself, with the same arguments, when a
    requirement is missing, an option could change what pip does, the image's scheme is unreadable, or the host's
    python3 does not run; it never sees the LC_CTYPE the host's python3 sets (PEP 538). The shim's folder does
    not stay."""
    from ascend_build.components import render_script

    site, bin_dir, prefix, home = tmp_path / "site", tmp_path / "bin", tmp_path / "prefix", tmp_path / "home"
    dist_info(site, "demo-dep", "2.0")
    wheel = make_wheel(tmp_path, requires=["demo-dep"] + (["demo-gone"] if case == "needs more" else []))
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(       # the image's: its pip only says what it was asked
        '#!/bin/sh\nif [ "$1 $2 $3" = "-m pip install" ]; then shift 3; echo "image\'s pip: $* LC_CTYPE=${LC_CTYPE-unset}"; exit 0; fi\n'
        f'exec {shlex.quote(sys.executable)} "$@"\n')
    run = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import native_stage as n; n.SITE_PIP_CONF = '/nonexistent'; "
           "sys.exit(n.main(sys.argv[1:]))")
    host = tmp_path / "host-python"
    host.write_text("#!/bin/sh\n" + ("exit 127\n" if case == "host fails to start" else "")
                    + f'[ "$4" != pip ] || {{ shift 3; exec {shlex.quote(sys.executable)} -c "{run}" '
                      f'{shlex.quote(str(Path(native_stage.__file__).parent))} "$@"; }}\n'
                      f'exec {shlex.quote(sys.executable)} "$@"\n')
    installer = tmp_path / "mindie.run"
    installer.write_text('python3 -c "import sys; print(\'its python3 runs\', sys.argv[1:])" x\n'
                         'python3 -m pip install --no-index --no-deps --quiet "$1"'
                         + (" --prefix /elsewhere" if case == "other option" else "") + '\necho "installer: done"\n')
    for program in (bin_dir / "python3", host):
        program.chmod(0o755)
    scheme = tmp_path / "scheme.json"
    if case != "no scheme":
        scheme.write_text(json.dumps(pip_scheme(prefix)))
    snippet = render_script("native-pip.sh.j2", home=str(home), checker=native_stage.__file__, host_python=str(host), shim=True,
                            scheme=str(scheme), tags=["manylinux2014_x86_64", "linux_x86_64"], unchecked=native_stage.UNCHECKED)
    script = ("ab_say() { echo \"say: $*\"; }\nab_fail() { echo \"fail: $*\"; exit 1; }\n"
              'ab_install_image() { bash "$2" "${@:3}"; }\n' + snippet
              + f"ab_install mindie {shlex.quote(str(installer))} {shlex.quote(str(wheel))}\necho \"end $?\"\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "LC_", "LANG"))}
    ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path,
                         env={**env, "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(site), "TMPDIR": str(tmp_path),
                              "HOME": str(tmp_path / "user"), "XDG_CONFIG_DIRS": str(tmp_path / "xdg"), "AB_STAGE": "mindie"})
    out = ran.stdout + ran.stderr
    placed = any(prefix.rglob("demo_pkg/__init__.py"))
    assert ran.returncode == 0 and "its python3 runs ['x']" in out and "installer: done" in out and "end 0" in out, out
    if case == "placed":
        assert placed and "image's pip:" not in out, out
        assert f"ascend-build[mindie]: native-stage: {wheel.name} installed on this CPU by the image's pip" in out
    else:
        assert not placed and f"image's pip: --no-index --no-deps --quiet {wheel}" in out and "LC_CTYPE=unset" in out, out
        assert ("requires demo-gone, which is not installed" in out) == (case == "needs more")
    assert not any(p.exists() for p in (tmp_path / "ab-python", home))
