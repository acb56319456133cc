"""ENV from the stages' set_env.sh files: the capture's difference (pure), its Dockerfile text
with hostile values, the keys that say when to capture again, the store, the steps each
component names, installer options as data."""
import json
import subprocess

import pytest
import yaml

from ascend_build.capture import (RefusedValue, capture, differences, dockerfile_env, env_diff, main, normalise, shell,
                                  shell_answer)
from ascend_build.delivery import Copy, Http, Mount
from ascend_build.errors import BuildError, ConfigError
from ascend_build.plan import plan_for
from ascend_build.render import context_files, dockerfile
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec, load_spec
from ascend_build.stage_env import EnvStore, known_env, parse_capture, stage_key

BASE = "localhost/ascend-build-base:bookworm"


def test_the_difference_is_what_sourcing_changed_or_added():
    before = {"PATH": "/usr/bin", "HOME": "/root", "LD_LIBRARY_PATH": "/x", "KEEP": "1", "GONE": "1"}
    after = {"PATH": "/a/bin:/usr/bin", "HOME": "/root", "LD_LIBRARY_PATH": "/x", "KEEP": "1", "NEW": "v",
             "PWD": "/", "SHLVL": "2", "_": "/usr/bin/env", "OLDPWD": "/tmp", "BASH_FUNC_f%%": "() { :; }"}
    assert env_diff(before, after) == {"PATH": "/a/bin:/usr/bin", "NEW": "v"}


def test_empty_and_repeated_path_elements_are_dropped():
    # `export LD_LIBRARY_PATH=/a:${LD_LIBRARY_PATH}` with the variable unset ends in an empty
    # element: the current folder
    assert env_diff({}, {"LD_LIBRARY_PATH": "/a::/b:"}) == {"LD_LIBRARY_PATH": "/a:/b"}
    assert normalise("PYTHONPATH", ":/p:/q:/p") == "/p:/q"
    assert normalise("ASCEND_HOME_PATH", "/h") == "/h" and normalise("OPTS", "a::b") == "a::b"
    assert env_diff({"LD_LIBRARY_PATH": "/a:/b"}, {"LD_LIBRARY_PATH": "/a:/b:"}) == {}


def test_verify_names_the_variables_that_differ():
    image = {"ASCEND_HOME_PATH": "/old", "LD_LIBRARY_PATH": "/t/lib64:/n/lib", "PATH": "/usr/bin"}
    # sourcing again on top of the image's ENV: prepends what is already there (deduplicated)
    sourced = {"ASCEND_HOME_PATH": "/new", "LD_LIBRARY_PATH": "/t/lib64:/n/lib:/t/lib64:/n/lib", "PATH": "/usr/bin",
               "MINDIE_HOME": "/m"}
    assert differences(image, sourced) == ["ASCEND_HOME_PATH", "MINDIE_HOME"]
    assert differences(image, {**image, "LD_LIBRARY_PATH": "/t/lib64:" + image["LD_LIBRARY_PATH"]}) == []


@pytest.mark.parametrize("value", ["$HOME", "${PATH}", 'a"b', "back\\slash", "it's", "a b", "张三", "\\$x"])
def test_hostile_values_stay_literal_in_env(value):
    """The ENV word gives the value unchanged: `$` does not expand, quotes and backslashes are
    escaped (a Dockerfile double-quoted word unescapes backslash, quote and dollar as a shell does; the e2e reads
    the values back from a built image)."""
    import dockerfile as parser

    text = dockerfile_env({"V": value, "A": "plain"})
    assert text.startswith('ENV A="plain" \\\n    V="')
    assert [c.cmd for c in parser.parse_string("FROM x\n" + text)] == ["FROM", "ENV"]
    word = text.split("V=", 1)[1].rstrip("\n")
    assert subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, text=True).stdout == value


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "tab\there", "nul\x00", "sep\u2028"])
def test_control_characters_are_refused_naming_the_variable(value):
    with pytest.raises(RefusedValue, match="BAD"):
        dockerfile_env({"BAD": value})


def test_a_variable_name_that_is_no_env_key_is_refused():
    with pytest.raises(RefusedValue, match="not a valid name"):
        dockerfile_env({"A-B": "1"})
    assert dockerfile_env({}) == ""


def test_capture_sources_in_order_and_reports_a_missing_file(tmp_path, monkeypatch):
    first, second = tmp_path / "a.sh", tmp_path / "b.sh"
    first.write_text('echo noise\nexport AB_HOME=/h\nexport LD_LIBRARY_PATH=/h/lib:${LD_LIBRARY_PATH}\n')
    second.write_text('export AB_ARGS="$*"; export AB_FROM_FIRST=${AB_HOME}/x\n')
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    found = capture([f"ab_source {first}", f"ab_source {second} --cxx_abi=1", f"ab_source_if {tmp_path}/none.sh"])
    assert env_diff(found["before"], found["after"]) == {
        "AB_HOME": "/h", "LD_LIBRARY_PATH": "/h/lib", "AB_ARGS": "--cxx_abi=1", "AB_FROM_FIRST": "/h/x"}
    missing = capture([f"ab_source {tmp_path}/none.sh"])
    assert "none.sh not found" in missing["error"]


def test_the_builds_bash_capture_gives_what_the_python_one_does(tmp_path, monkeypatch):
    """shell(): the same sourcing in bash alone (what a build runs in the image: no python3 to start under
    QEMU), its answer as capture()'s; a missing file is the same error; a set_env.sh that never returns is
    killed after the seconds given, and the script ends (its bash is the container's first process)."""
    import time

    first, second, hang = tmp_path / "a.sh", tmp_path / "b.sh", tmp_path / "hang.sh"
    first.write_text('echo noise\nexport AB_HOME=/h\nexport LD_LIBRARY_PATH=/h/lib:${LD_LIBRARY_PATH}\n')
    second.write_text('export AB_ARGS="$*"; export AB_FROM_FIRST=${AB_HOME}/x\nexport AB_SPACE="a b\tc"\n')
    hang.write_text("sleep 60\nexport AB_NEVER=1\n")
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    lines = [f"ab_source {first}", f"ab_source {second} --cxx_abi=1", f"ab_source_if {tmp_path}/none.sh"]

    def run(lines, seconds=60):      # the output to files: a container's end ends what bash left behind, here not
        out, err = tmp_path / "out", tmp_path / "err"
        with out.open("w") as o, err.open("w") as e:
            done = subprocess.run(["bash", "-c", shell(lines, seconds)], stdout=o, stderr=e)
        return shell_answer(done.returncode, out.read_text(), err.read_text())

    found, python = run(lines), capture(lines)
    assert env_diff(found["before"], found["after"]) == env_diff(python["before"], python["after"]) == {
        "AB_HOME": "/h", "LD_LIBRARY_PATH": "/h/lib", "AB_ARGS": "--cxx_abi=1", "AB_FROM_FIRST": "/h/x", "AB_SPACE": "a b\tc"}
    assert "none.sh not found" in run([f"ab_source {tmp_path}/none.sh"])["error"]
    began = time.monotonic()
    assert "error" in run([f"ab_source {hang}"], seconds=1) and time.monotonic() - began < 30
    assert shell_answer(0, "no separator", "")["error"] == "bash exited with 0"


def test_the_capture_script_prints_the_dockerfile_env(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps({"before": {}, "after": {"K": "$v"}})))
    assert main(["dockerfile-env"]) == 0 and capsys.readouterr().out == 'ENV K="\\$v"\n'
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps({"error": "boom"})))
    assert main(["dockerfile-env"]) == 1 and "boom" in capsys.readouterr().err


def test_a_failed_or_hostile_capture_is_one_build_error():
    from ascend_build.components import StagePlan

    stage = StagePlan(name="cann", parent="base")
    assert parse_capture(stage, "noise\n" + json.dumps({"before": {}, "after": {"A": "1"}})) == {"A": "1"}
    with pytest.raises(BuildError, match="stage cann: sourcing its set_env.sh files in the image failed: .*not found"):
        parse_capture(stage, json.dumps({"error": "x/set_env.sh not found"}))
    with pytest.raises(BuildError, match="stage cann: sourcing its set_env.sh files in the image failed"):
        parse_capture(stage, "")
    with pytest.raises(BuildError, match="stage cann: sourcing set X to a value that contains"):
        parse_capture(stage, json.dumps({"before": {}, "after": {"X": "a\nb"}}))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("env") / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.0.RC2", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


def plan_of(workdir, target="mindie"):
    return plan_for(settings_for(workdir, Options(target=target, base_image=BASE, platform="x86_64")))


def test_the_key_follows_every_input_up_to_the_install_step(workdir):
    plan = plan_of(workdir)
    files = context_files(plan)
    prefix = dockerfile(plan, upto="cann")
    assert prefix.rstrip().endswith(plan.stage("cann").files[-1].sha256) and "AS pta" not in prefix
    key = stage_key(prefix, files, "sha256:base", "x86_64")
    assert key == stage_key(prefix, files, "sha256:base", "x86_64")
    assert key == stage_key(dockerfile(plan_of(workdir, "cann"), upto="cann"), files, "sha256:base", "x86_64"), \
        "the target does not change a stage's key"
    changed_script = {**files, "scripts/install_cann.sh": files["scripts/install_cann.sh"] + "# more\n"}
    assert stage_key(prefix, changed_script, "sha256:base", "x86_64") != key
    later_script = {**files, "scripts/install_mindie.sh": "changed"}
    assert stage_key(prefix, later_script, "sha256:base", "x86_64") == key, "a later stage's script is not an input"
    assert stage_key(prefix, files, "sha256:other", "x86_64") != key
    assert stage_key(prefix, files, "sha256:base", "aarch64") != key


def test_known_env_stops_at_the_first_unknown_stage_and_chains_keys(workdir, tmp_path):
    plan = plan_of(workdir)
    files, store = context_files(plan), EnvStore(tmp_path / "set-env")
    captured, pending = known_env(plan, files, "sha256:base", store)
    assert captured == {} and pending[0].name == "cann"
    store.put(pending[2], {"ASCEND_HOME_PATH": "/h"})
    captured, pending = known_env(plan, files, "sha256:base", store)
    assert captured == {"cann": {"ASCEND_HOME_PATH": "/h"}} and pending[0].name == "mindie"
    assert 'ENV ASCEND_HOME_PATH="/h"' in pending[1][0] and pending[1][1] == "mindie", "the mindie prefix holds cann's ENV: its key follows it"
    store.put(pending[2], {"MINDIE_HOME": "/m"})
    captured, pending = known_env(plan, files, "sha256:base", store)
    assert pending is None and set(captured) == {"cann", "mindie"}
    text = dockerfile(plan, captured=captured)
    assert text.index('ENV ASCEND_HOME_PATH="/h"') < text.index("FROM cann AS pta") < text.index('ENV MINDIE_HOME="/m"')
    (tmp_path / "set-env" / "list.json").write_text("[1]")
    (tmp_path / "set-env" / "number.json").write_text('{"A": 1}')
    assert store.get("list") is None and store.get("number") is None and store.get("absent") is None


def test_each_component_names_its_set_env_steps(workdir):
    plan = plan_of(workdir)
    cann = [s.line for s in plan.stage("cann").set_env]
    assert cann == ["ab_source /usr/local/Ascend/ascend-toolkit/set_env.sh",
                    "ab_source_if ${ASCEND_HOME_PATH}/share/info/ascendnpu-ir/bin/set_env.sh",
                    "ab_source /usr/local/Ascend/nnal/atb/set_env.sh --cxx_abi=0"]
    assert plan.stage("pta").set_env == []
    assert [s.line for s in plan.stage("mindie").set_env] == ["ab_source /usr/local/Ascend/mindie/set_env.sh",
                                                              "ab_source /usr/local/Ascend/atb-models/set_env.sh"]
    label = next(line for line in dockerfile(plan).splitlines() if "io.ascend-build.set-env=" in line)
    assert "\\${ASCEND_HOME_PATH}" in label, "`$` in a label must not expand"


def test_the_atb_llm_wheel_form_exports_its_package_folder(tmp_path):
    from ascend_build.components import PlanInputs, data, set_env_step

    step = set_env_step(data()["set_env"]["atb_llm"], {})
    assert step.line.startswith("export ATB_SPEED_HOME_PATH=$(python3 -c ")
    site = tmp_path / "site" / "atb_llm"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("raise ImportError('never imported')\n")
    found = subprocess.run(["bash", "-c", step.line + '; printf %s "$ATB_SPEED_HOME_PATH"'], capture_output=True,
                           text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")})
    assert found.stdout == str(site)
    assert PlanInputs  # what the components plan from builds these steps


def test_cann_sources_the_toolkit_env_before_kernels(workdir):
    script = plan_of(workdir).stage("cann").script
    lines = script.splitlines()
    toolkit = next(i for i, l in enumerate(lines) if l.startswith("ab_install toolkit"))
    assert lines[toolkit + 1] == "ab_source /usr/local/Ascend/ascend-toolkit/set_env.sh"
    assert next(i for i, l in enumerate(lines) if l.startswith("ab_install kernels")) > toolkit + 1


def test_install_for_all_only_where_accepted_and_install_options_added(workdir):
    config = workdir / "ascend-build.yaml"
    saved = config.read_text()
    try:
        spec = yaml.safe_load(saved) or {}
        spec["install_options"] = {"nnal": ["--torch_atb"], "mindie": ["--level=2"]}
        config.write_text(yaml.safe_dump(spec))
        plan = plan_of(workdir)
    finally:
        config.write_text(saved)
    cann, mindie = plan.stage("cann").script, plan.stage("mindie").script
    assert "--install-path=/usr/local/Ascend --install-for-all --torch_atb\n" in cann
    assert cann.count("--install-for-all") == 3
    assert "--quiet --install-path=/usr/local/Ascend\n" not in mindie and "--install-path=/usr/local/Ascend --level=2\n" in mindie
    assert "chmod -R go+rX,go-w /usr/local/Ascend/mindie" in mindie


@pytest.mark.parametrize("option", ["--torch_atb", "--level=2", "--feature=a,b", "--path=/opt/x"])
def test_installer_options_of_the_grammar_are_accepted(option):
    assert BuildSpec(install_options={"nnal": [option]}).install_options == {"nnal": [option]}


@pytest.mark.parametrize("bad", [{"nnal": ["-x"]}, {"nnal": ["--a;rm -rf /"]}, {"nnal": ["--a=$(id)"]},
                                 {"nnal": ["--a b"]}, {"nnal": ["--install-path=/x"]}, {"nnal": "--torch_atb"},
                                 {"torch": ["--x"]}, {"nnal": ["--a=`id`"]}, {"nnal": ["--a\n"]}])
def test_installer_options_outside_the_grammar_are_refused(tmp_path, bad):
    (tmp_path / "ascend-build.yaml").write_text(yaml.safe_dump({"install_options": bad}))
    with pytest.raises(ConfigError, match="install_options"):
        load_spec(tmp_path)


def test_podman_runs_through_buildah_where_it_cannot_set_rlimits(tmp_path, monkeypatch):
    """Some sandboxes refuse the rlimits `podman run` always sets, not buildah's runs: the capture
    (and verify) then run through buildah, removing its working container."""
    from ascend_build.engines.podman import Podman

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text("#!/bin/sh\necho 'Error: runc create failed: error setting rlimits for ready process' >&2\nexit 126\n")
    (bin_dir / "buildah").write_text('#!/bin/sh\necho "$*" >> "$0.calls"\n'
                                     'case "$1" in from) echo c1 ;; run) cat ;; esac\n')
    for tool in ("podman", "buildah"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    result = Podman(str(bin_dir / "podman")).run_container("img", ["-", "capture", "[]"], stdin="from stdin",
                                                         network="none", entrypoint="python3")
    assert result.returncode == 0 and result.stdout == "from stdin"
    assert (bin_dir / "buildah.calls").read_text().splitlines() == [
        "from --pull-never --quiet img", "run --network none c1 -- python3 - capture []", "rm c1"]


@pytest.mark.parametrize("delivery", [Mount(), Copy(), Http(url_secret=True)], ids=["mount", "copy", "http-secret"])
def test_one_capture_serves_every_delivery_and_engine(workdir, tmp_path, delivery):
    from dataclasses import replace

    http = plan_of(workdir)
    store = EnvStore(tmp_path / "set-env")
    _, (stage, prefix, key) = known_env(http, context_files(http), "sha256:base", store)
    other = replace(http, settings=replace(http.settings, delivery=delivery))
    _, (same, own_prefix, same_key) = known_env(other, context_files(other), "sha256:base", store)
    assert same.name == stage.name and same_key == key and own_prefix != prefix   # built as its own, keyed as one
