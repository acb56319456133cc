"""Components own their knowledge: one new module (tools_component.py, in the test tree) adds a
stage that flows through check, plan, render and verify's probe selection, no other file changed;
the probe that verify sends into images works on its own."""
import importlib.metadata
import io
import json
import subprocess
import tarfile
import sys
from pathlib import Path

import pytest
import tools_component

from ascend_build import probe
from ascend_build.catalog import check
from ascend_build.catalog.model import file_patterns
from ascend_build.catalog.scan import scan
from ascend_build.components import registry
from ascend_build.plan import plan_for
from ascend_build.render import context_files
from ascend_build.scaffold import scaffold
from ascend_build.server import files_to_serve
from ascend_build.settings import Options, settings_for
from ascend_build.verify import probes_for

PROBE = Path(probe.__file__)


@pytest.fixture
def with_tools(monkeypatch):
    monkeypatch.setattr(registry, "COMPONENTS", list(registry.COMPONENTS))
    registry.register(tools_component.COMPONENT)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("components") / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


TOOLS = "Ascend-tools_1.2.0_linux-x86_64.tar.gz"


def test_a_new_component_flows_through_check_plan_render_and_verify(workdir, with_tools):
    settings = settings_for(workdir, Options(target="tools", base_image="localhost/ascend-build-base:bookworm", platform="x86_64"))
    assert settings.chain == ("base", "cann", "tools"), "its parent, not the registry order"
    missing = check(workdir, settings.spec, registry.components(), settings.builtin_chain, "tools", "x86_64")
    assert any(p.code == "missing-component" and "Ascend-tools_<version>_linux-x86_64.tar.gz" in p.message
               for p in missing.problems)
    tarball = workdir / "packages" / TOOLS
    with tarfile.open(tarball, "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("tools/README"), io.BytesIO(b""))
    try:
        selection = check(workdir, settings.spec, registry.components(), settings.builtin_chain, "tools", "x86_64")
        assert selection.ok and "tools-note" in {p.code for p in selection.problems}
        assert [(p.name, p.version, p.arch) for p in selection.stages["tools"]] == [(TOOLS, "1.2.0", "x86_64")]
        plan = plan_for(settings)
        assert TOOLS in plan.served_files() and plan.stage("tools").files[0].sha256 == selection.stages["tools"][0].sha256
        files = context_files(plan)
        assert "FROM cann AS tools" in files["Dockerfile"] and " AS pta" not in files["Dockerfile"] and 'TOOLS_HOME="/usr/local/Ascend/tools"' in files["Dockerfile"]
        assert f"{TOOLS}={plan.stage('tools').files[0].sha256}" in files["Dockerfile"]
        assert f'tar -xzf "$PKG_DIR"/{TOOLS} -C /usr/local/Ascend/tools' in files["scripts/install_tools.sh"]
        assert "ab_pip" not in files["scripts/install_tools.sh"], "no helper wheel in the folder"
        assert TOOLS in files_to_serve(workdir, None, scan(workdir, file_patterns(registry.components())))
    finally:
        tarball.unlink()
    labels = {"io.ascend-build.target": "tools", "io.ascend-build.tools.version": "1.2.0"}
    assert [p["name"] for p in probes_for(labels)] == ["tools home set"]


def test_probes_follow_the_labels():
    assert probes_for({"io.ascend-build.target": "base"}) == []
    names = [p["name"] for p in probes_for({"io.ascend-build.toolkit.version": "8.5.0", "io.ascend-build.torch-npu.version": "2.6.0"})]
    assert "toolkit version matches label" in names and "import torch_npu" in names
    assert "nnal set_env.sh present" not in names and "import torch" not in names


def fake_install(root: Path) -> None:
    info = root / "ascend-toolkit/latest/x86_64-linux"
    info.mkdir(parents=True)
    (info / "ascend_toolkit_install.info").write_text("package_name=toolkit\nversion=8.5.0\n")
    (root / "ascend-toolkit/set_env.sh").write_text("")
    (root / "mindie/2.3.0").mkdir(parents=True)
    (root / "mindie/latest").symlink_to(root / "mindie/2.3.0")


@pytest.mark.parametrize("probe_spec, version, ok", [
    ({"kind": "file", "path": "ascend-toolkit/set_env.sh"}, None, True),
    ({"kind": "file", "path": "nnal/atb/set_env.sh"}, None, False),
    ({"kind": "info-version", "glob": "ascend-toolkit/latest/*-linux/ascend_toolkit_install.info"}, "8.5.0", True),
    ({"kind": "info-version", "glob": "ascend-toolkit/latest/*-linux/ascend_toolkit_install.info"}, "8.3.RC1", False),
    ({"kind": "link-version", "path": "mindie/latest"}, "2.3.0", True),
    ({"kind": "env-dir", "var": "PROBE_TEST_UNSET"}, None, False),
    ({"kind": "import", "module": "json"}, None, True),
    ({"kind": "import", "module": "no_such_module_here"}, None, False),
    # no __version__ in the module (vllm_ascend): its distribution's version
    ({"kind": "import", "module": "typing_extensions", "versioned": True}, importlib.metadata.version("typing_extensions"), True),
    ({"kind": "import", "module": "typing_extensions", "versioned": True}, "0.0.1", False),
    ({"kind": "teleport"}, None, False),
])
def test_each_probe_kind(tmp_path, probe_spec, version, ok):
    fake_install(tmp_path)
    assert probe.run_probe({"name": "x", **probe_spec}, version, str(tmp_path))["ok"] is ok


@pytest.mark.parametrize("never, found", [
    ({"never": ["nvidia-*", "cuda-*"], "beside": {"torch-npu": ["triton"]}}, "none"),
    ({"never": ["nvidia-*", "PyTest"]}, "pytest"),                       # names compare normalised
    ({"never": [], "beside": {"pytest": ["pluggy"], "no-such-dist": ["packaging"]}}, "pluggy"),
])
def test_the_probe_names_what_must_not_be_installed(never, found):
    """Against this interpreter's own distributions (pytest and pluggy are installed here)."""
    result = probe.never_installed(never)
    assert result["detail"] == found and result["ok"] is (found == "none")


def test_empty_mount_points_are_not_left_downloads(tmp_path):
    """BuildKit leaves the empty folders its RUN --mount targets were; a file there is a leftover."""
    pkgs = tmp_path / "ascend-pkgs"
    (pkgs / "pta").mkdir(parents=True)
    (pkgs / "built").mkdir()
    assert probe.leftovers({}, str(tmp_path / "Ascend"), str(pkgs), scratch=())["ok"]
    (pkgs / "pta" / "torch.whl").write_bytes(b"x")
    left = probe.leftovers({}, str(tmp_path / "Ascend"), str(pkgs), scratch=())
    assert not left["ok"] and left["detail"].endswith("pta/torch.whl")


def test_the_probe_runs_as_a_script_from_stdin(tmp_path):
    """As verify sends it: `python3 - checks LABELS PROBES NS PKG_DIR`, the program on stdin."""
    fake_install(tmp_path)
    labels = {"io.ascend-build.install-path": str(tmp_path), "io.ascend-build.toolkit.version": "8.5.0"}
    probes = [{"kind": "file", "slot": "toolkit", "name": "set_env", "path": "ascend-toolkit/set_env.sh"}]
    result = subprocess.run([sys.executable, "-", "checks", json.dumps(labels), json.dumps(probes), "io.ascend-build",
                             str(tmp_path / "no-pkgs")], input=PROBE.read_text(), capture_output=True, text=True, timeout=120)
    checks = json.loads(result.stdout.splitlines()[-1])
    assert checks[0] == {"name": "set_env", "ok": True, "detail": str(tmp_path / "ascend-toolkit/set_env.sh")}
    assert [c["name"] for c in checks[1:]] == ["no installer or download folder left", "pip check clean",
                                               "no CUDA distribution or replaced package"]
    user = subprocess.run([sys.executable, "-", "user", str(tmp_path), "json,no_such_module_here"], input=PROBE.read_text(),
                          capture_output=True, text=True, timeout=60)
    assert json.loads(user.stdout) == ["import no_such_module_here: No module named 'no_such_module_here'"]


def test_verify_refuses_what_the_components_refuse_beside_theirs():
    from ascend_build.catalog.nocuda import never_patterns

    assert never_patterns(registry.components()) == {"never": ["nvidia-*", "cuda-*"], "beside": {"torch-npu": ["triton"]}}
