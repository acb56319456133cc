"""Dockerfile generation: golden text per target x delivery x OS family, hadolint, BuildKit's
parser, stage chain rules, cache keys that follow content."""
import difflib
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import dockerfile
import pytest
import yaml

from clirun import cli as run_cli

from ascend_build.demo import standins
from ascend_build.errors import ConfigError
from ascend_build.chain import stage_chain
from ascend_build.plan import plan_for
from ascend_build.render import context_files
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec

GOLDEN = Path(__file__).parent / "golden"
HADOLINT_IGNORED = ["DL3008", "DL3033", "DL3041"]  # distro package versions are not pinned: the base image decides
TARGETS = ["base", "cann", "pta", "mindie"]
DELIVERIES = ["http", "mount", "copy"]
FAMILIES = {"debian": "localhost/ascend-build-base:bookworm", "openeuler": "openeuler/openeuler:22.03-lts"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan") / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


def normalise(text: str) -> str:
    return re.sub(r"\b[0-9a-f]{64}\b", "<sha256>", text)


def plan_workdir(workdir, target, delivery, base_image, platform, engine=None):
    return plan_for(settings_for(workdir, Options(target=target, delivery=delivery, base_image=base_image, platform=platform), engine))


def render(workdir, target, delivery, base_image, **config):
    if config:
        path = workdir / "ascend-build.yaml"
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump({**data, **config}))
    return context_files(plan_workdir(workdir, target, delivery, base_image, "x86_64"))


def assert_golden(name: str, text: str) -> None:
    """`text` equals tests/unit/golden/NAME; `UPDATE_GOLDEN=1 pytest tests/unit` rewrites the goldens."""
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), "".join(difflib.unified_diff(golden.read_text().splitlines(True), text.splitlines(True)))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize("target", TARGETS)
def test_golden_dockerfiles(workdir, target, delivery, family):
    assert_golden(f"{target}-{delivery}-{family}.Dockerfile", normalise(render(workdir, target, delivery, FAMILIES[family])["Dockerfile"]))


def test_golden_secret_dockerfile(workdir, tmp_path):
    """What BuildKit and podman builds run: the server URL as a build secret."""
    from ascend_build.engines.docker import DockerBuildKit

    plan = plan_workdir(workdir, "mindie", "http", FAMILIES["debian"], "x86_64", engine=DockerBuildKit("docker"))
    text = context_files(plan)["Dockerfile"]
    assert_golden("mindie-http-secret-debian.Dockerfile", normalise(text))
    (tmp_path / "Dockerfile").write_text(text)
    ignores = [arg for code in HADOLINT_IGNORED for arg in ("--ignore", code)]
    lint = subprocess.run([str(Path(sys.executable).parent / "hadolint"), "--no-color", *ignores, str(tmp_path / "Dockerfile")],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert [c.value[-1] for c in dockerfile.parse_string(text) if c.cmd == "FROM"][-1] == "mindie"


SCRIPTS = ["lib.sh", "run-stage.sh", "entrypoint.sh", "profile.sh", "install_cann.sh", "install_pta.sh", "install_mindie.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_golden_scripts(workdir, script):
    assert_golden(f"scripts/{script}", render(workdir, "mindie", "http", FAMILIES["debian"])[f"scripts/{script}"])


def test_golden_dockerbuild_sh(workdir, tmp_path):
    from ascend_build.export import export

    export(plan_workdir(workdir, "mindie", "http", FAMILIES["debian"], "x86_64"), workdir, tmp_path / "out")
    text = (tmp_path / "out" / "dockerbuild.sh").read_text().replace(str(workdir.resolve()), "<workdir>")
    assert_golden("dockerbuild.sh", text)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("delivery", DELIVERIES)
def test_hadolint_and_buildkit_parser_accept_every_dockerfile(workdir, tmp_path, delivery, family):
    hadolint = Path(sys.executable).parent / "hadolint"
    for target in TARGETS:
        text = render(workdir, target, delivery, FAMILIES[family])["Dockerfile"]
        path = tmp_path / f"{target}.Dockerfile"
        path.write_text(text)
        ignores = [arg for code in HADOLINT_IGNORED for arg in ("--ignore", code)]
        lint = subprocess.run([str(hadolint), "--no-color", *ignores, str(path)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
        commands = dockerfile.parse_string(text)
        assert [c.value[0].split()[0] for c in commands if c.cmd == "FROM"][-1].startswith(("${BASE_IMAGE}", "base", "cann", "pta"))
        assert [c.value for c in commands if c.cmd == "FROM"][-1][-1] == target


@pytest.mark.parametrize("delivery", ["http", "mount"])
def test_no_package_is_copied_or_added(workdir, delivery):
    commands = dockerfile.parse_string(render(workdir, "mindie", delivery, FAMILIES["debian"])["Dockerfile"])
    sources = [v for c in commands if c.cmd in ("COPY", "ADD") for v in c.value[:-1]]
    assert sources and all(s.startswith("scripts/") for s in sources)
    assert not any(c.cmd == "ADD" for c in commands)


def test_copy_delivery_warns_and_copies(workdir):
    plan = plan_workdir(workdir, "cann", "copy", FAMILIES["debian"], "x86_64")
    assert any("installer bytes" in w for w in plan.warnings)
    assert "COPY pkgs/cann/ /tmp/ascend-pkgs/cann/" in context_files(plan)["Dockerfile"]


def test_every_install_run_names_the_sha256_of_its_files(workdir):
    text = render(workdir, "mindie", "http", FAMILIES["debian"])["Dockerfile"]
    runs = re.findall(r"^RUN .*?run-stage\.sh (\w+) .*?(?=\n\S)", text, re.S | re.M)
    assert runs == ["cann", "pta", "mindie"]
    for pkg in (p for p in (workdir / "packages").iterdir() if p.suffix != ".sha256"):
        assert f"{pkg.name}={hashlib.sha256(pkg.read_bytes()).hexdigest()}" in text


def test_pta_target_has_no_mindie_step(workdir):
    files = render(workdir, "pta", "http", FAMILIES["debian"])
    assert "mindie" not in files["Dockerfile"].lower()
    assert not any("mindie" in name for name in files)


def test_one_changed_file_changes_only_its_stage(workdir, tmp_path):
    before = render(workdir, "mindie", "http", FAMILIES["debian"])["Dockerfile"]
    npu = next((workdir / "packages").glob("torch_npu-*.whl"))
    original = npu.read_bytes()
    try:
        standins.make_torch_npu(workdir / "packages", "2.6.0.post5", "2.6.0", "x86_64", "3.11", 4096, seed="other")
        after = render(workdir, "mindie", "http", FAMILIES["debian"])["Dockerfile"]
        digests = {hashlib.sha256(original).hexdigest(), hashlib.sha256(npu.read_bytes()).hexdigest()}
    finally:
        npu.write_bytes(original)
    changed = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:2] in ("- ", "+ ")]
    assert len(changed) == 4, changed  # the RUN argument and the label, before and after
    assert all(any(d in line for d in digests) for line in changed)
    pta = after[after.index("FROM cann AS pta"):after.index("FROM pta AS mindie")]
    assert all(line[2:] in pta or line[2:] in before for line in changed)


def test_skipping_a_stage_reparents_its_successor(workdir):
    text = render(workdir, "mindie", "http", FAMILIES["debian"], skip=["pta"])["Dockerfile"]
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump({**yaml.safe_load((workdir / "ascend-build.yaml").read_text()), "skip": []}))
    assert "FROM cann AS mindie" in text and " AS pta" not in text


def test_stage_chain_rules():
    spec = BuildSpec(stages=[{"name": "app", "parent": "pta", "script": "true"}], skip=["mindie"])
    assert stage_chain(spec, "app") == ["base", "cann", "pta", "app"]
    assert stage_chain(spec, "cann") == ["base", "cann"]
    with pytest.raises(ConfigError, match="skipped"):
        stage_chain(spec, "mindie")
    with pytest.raises(ConfigError, match="unknown"):
        stage_chain(spec, "nope")
    loop = BuildSpec(stages=[{"name": "a", "parent": "b", "script": "x"}, {"name": "b", "parent": "a", "script": "x"}])
    with pytest.raises(ConfigError, match="loop"):
        stage_chain(loop, "a")
    with pytest.raises(ConfigError, match="custom stage 'cann' takes the name of a built-in stage"):
        stage_chain(BuildSpec(stages=[{"name": "cann", "parent": "base", "script": "x"}]), "cann")
    with pytest.raises(ConfigError, match=r"cannot skip \['base'\]"):
        stage_chain(BuildSpec(skip=["base"]), "cann")
    with pytest.raises(ConfigError, match=r"cannot skip \['app'\]"):
        stage_chain(BuildSpec(stages=[{"name": "app", "parent": "pta", "script": "x"}], skip=["app"]), "app")
    with pytest.raises(ConfigError, match="unknown stage 'nope' \\(the parent of 'app'\\)"):
        stage_chain(BuildSpec(stages=[{"name": "app", "parent": "nope", "script": "x"}]), "app")
    on_skipped = BuildSpec(stages=[{"name": "app", "parent": "pta", "script": "x"}], skip=["pta"])
    assert stage_chain(on_skipped, "app") == ["base", "cann", "app"], "a stage on a skipped one builds on its parent"


def test_the_chain_walks_the_graph_not_the_registry_order(monkeypatch):
    """A component on cann (as a MindSpore or vLLM stage would be): its target builds base, cann
    and itself, no skip needed; mindie still builds base, cann, pta, mindie."""
    from ascend_build.components import Component, registry
    monkeypatch.setattr(registry, "COMPONENTS", [*registry.COMPONENTS, Component(stage="side", parent="cann")])
    assert stage_chain(BuildSpec(), "side") == ["base", "cann", "side"]
    assert stage_chain(BuildSpec(), "mindie") == ["base", "cann", "pta", "mindie"]
    assert stage_chain(BuildSpec(skip=["cann"]), "side") == ["base", "side"]


def test_custom_stage_and_override(workdir):
    (workdir / "app.txt").write_text("model code\n")
    (workdir / "install-scripts" / "install_cann.sh").write_text("#!/bin/bash\necho custom cann\n")
    try:
        files = render(workdir, "app", "mount", FAMILIES["debian"],
                       stages=[{"name": "app", "parent": "mindie", "files": ["app.txt"], "script": "cp $PKG_DIR/app.txt /opt/", "env": {"APP_HOME": "/opt"}}])
    finally:
        (workdir / "install-scripts" / "install_cann.sh").unlink()
        (workdir / "ascend-build.yaml").write_text(yaml.safe_dump({**yaml.safe_load((workdir / "ascend-build.yaml").read_text()), "stages": []}))
    text = files["Dockerfile"]
    assert "FROM mindie AS app" in text and 'APP_HOME="/opt"' in text
    assert "--mount=type=bind,source=pkgs/app,target=/tmp/ascend-pkgs/app" in text
    assert files["scripts/install_cann.sh"] == "#!/bin/bash\necho custom cann\n"
    assert "cp $PKG_DIR/app.txt /opt/" in files["scripts/install_app.sh"]


def test_each_stage_names_the_set_env_files_it_sources_for_its_env(workdir):
    """The ENV comes from sourcing in the image (build); the Dockerfile names what is sourced."""
    text = render(workdir, "mindie", "http", FAMILIES["debian"])["Dockerfile"]
    cann = text.split("FROM base AS cann", 1)[1].split("FROM ", 1)[0]
    assert ("# after install: source /usr/local/Ascend/ascend-toolkit/set_env.sh, ${ASCEND_HOME_PATH}/share/info/"
            "ascendnpu-ir/bin/set_env.sh (when present), /usr/local/Ascend/nnal/atb/set_env.sh --cxx_abi=") in cann
    assert "ASCEND_TOOLKIT_HOME" not in text, "no hand-kept toolkit ENV"
    assert "# after install: source /usr/local/Ascend/mindie/set_env.sh" in text.split("AS mindie", 1)[1]
    assert 'ENTRYPOINT ["/usr/local/bin/ascend-entrypoint"]' in text and "PIP_BREAK_SYSTEM_PACKAGES" in text


def test_proxy_variables_are_never_baked_in(workdir, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:8080")
    text = render(workdir, "mindie", "http", FAMILIES["debian"])["Dockerfile"]
    assert "proxy" not in text.lower()


def test_plan_command_prints_or_writes(workdir, tmp_path):
    args = ["plan", "-C", workdir, "--target", "pta", "--platform", "x86_64"]
    printed = run_cli(*args)
    assert printed.returncode == 0 and printed.stdout.startswith("# Generated by ascend-build")
    assert "scripts/install_pta.sh" in printed.stderr
    written = run_cli(*args, "--delivery", "copy", "-o", tmp_path / "out")
    assert written.returncode == 0 and "installer bytes" in written.stderr
    assert (tmp_path / "out/Dockerfile").read_text().count("FROM ") == 3
    assert (tmp_path / "out/scripts/install_pta.sh").is_file() and not (tmp_path / "out/scripts/install_mindie.sh").exists()


def test_url_as_a_secret_keeps_it_out_of_the_dockerfile(workdir):
    from ascend_build.engines.docker import DockerBuildKit
    from ascend_build.render import dockerfile

    plan = plan_workdir(workdir, "mindie", "http", FAMILIES["debian"], "x86_64", engine=DockerBuildKit("docker"))
    assert plan.url_secret
    text = dockerfile(plan)
    assert "ARG ASCEND_PKG_URL" not in text
    assert text.count("RUN --mount=type=secret,id=ascend-pkg-url bash /opt/ascend-build/run-stage.sh") == 3


@pytest.mark.parametrize("target", ["cann", "pta", "mindie"])
def test_check_hashes_exactly_what_the_build_serves(workdir, target):
    plan = plan_workdir(workdir, target, "http", FAMILIES["debian"], "x86_64")
    served = plan.served_files()
    assert {p.file for p in served.values()} == {p.file for p in plan.selection.delivered()}
    assert all(p.sha256 for p in served.values())


def test_other_wheels_go_only_where_pip_needs_them(workdir, tmp_path):
    extra = standins.make_wheel(workdir / "packages", "six", "1.16.0", ("py3", "none", ["any"]), {"six.py": b""})
    requirements = workdir / "requirements.txt"
    kept = requirements.read_text()
    try:
        requirements.write_text(kept + "six>=1.16\n")
        with_requirement = plan_workdir(workdir, "pta", "http", FAMILIES["debian"], "x86_64")
        requirements.write_text(kept)
        without = plan_workdir(workdir, "pta", "http", FAMILIES["debian"], "x86_64")
    finally:
        extra.unlink()
        requirements.write_text(kept)
    assert extra.name in with_requirement.served_files() and extra.name not in without.served_files()
    assert extra.name in {p.name for p in with_requirement.stage("pta").files}


def test_values_are_quoted_by_default(workdir):
    """Shell templates shlex-quote every value, Dockerfile values that are not plain words become
    JSON strings, `|raw` passes a trusted fragment through, labels stay UTF-8."""
    from ascend_build.components import data, render_script, set_env_step
    from ascend_build.templating import dockerfile_quote, environment, raw, shell_quote

    toolkit_env = set_env_step(data()["set_env"]["toolkit"], {"P": "/opt/my Ascend", "home": "ascend-toolkit"}).line
    script = render_script("cann.sh.j2", toolkit_env=raw(toolkit_env), pip_form=False, toolkit_options=raw("--install-for-all"),
                           toolkit="a b.run", kernels=None, kernels_component=None, nnal=None, form="toolkit",
                           kernels_options="", nnal_options="", tools=[], pip_source="")
    assert "ab_source '/opt/my Ascend/ascend-toolkit/set_env.sh'" in script and "\"$PKG_DIR\"/'a b.run' --install-for-all" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert environment().from_string("{{ v }}").render(v="a b") == "a b"      # other templates: as is
    assert shell_quote("it's") == "'it'\"'\"'s'" and dockerfile_quote("${BASE_IMAGE}") == "${BASE_IMAGE}"
    assert dockerfile_quote("my image") == '"my image"' and dockerfile_quote("Zhāng 张") == '"Zhāng 张"'
    try:
        text = render(workdir, "cann", "http", FAMILIES["debian"], labels={"maintainer": "张三"}, timezone="Asia/Shanghai")["Dockerfile"]
    finally:
        render(workdir, "cann", "http", FAMILIES["debian"], labels={}, timezone="UTC")
    assert 'maintainer="张三"' in text and "/usr/share/zoneinfo/Asia/Shanghai" in text
