"""ascend-build.yaml: defaults, did-you-mean for unknown keys, clear errors, the JSON schema."""
import json

import pytest

from clirun import cli
from ascend_build.engines.docker import Docker, DockerBuildKit
from ascend_build.engines.podman import Podman
from ascend_build.errors import ConfigError
from ascend_build.settings import Options, settings_for
from ascend_build.spec import load_spec


def write(tmp_path, text):
    (tmp_path / "ascend-build.yaml").write_text(text)
    return tmp_path


def test_defaults_without_a_config(tmp_path):
    spec = load_spec(tmp_path)
    assert (spec.target, spec.install_path, spec.user.uid, spec.delivery) == ("mindie", "/usr/local/Ascend", 1000, "auto")


@pytest.mark.parametrize("text, words", [
    ("targte: pta\n", "unknown key 'targte' (did you mean 'target'?)"),
    ("user:\n  nmae: x\n", "unknown key 'user.nmae' (did you mean 'name'?)"),
    ("matrix:\n  chips: [910b]\n", "unknown key 'matrix.chips' (did you mean 'chip'?)"),
    ("delivery: ftp\n", "delivery"),
    ("target: [\n", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping"),
])
def test_bad_configs_are_one_clear_message(tmp_path, text, words):
    with pytest.raises(ConfigError) as err:
        load_spec(write(tmp_path, text))
    assert words in err.value.message and "ascend-build.yaml" in err.value.message


def test_cli_reports_config_errors_without_traceback(tmp_path):
    result = cli("plan", "-C", write(tmp_path, "targte: pta\n"))
    assert result.returncode == 1 and "did you mean 'target'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("text, words", [
    ("skip: [base]\n", "cannot skip ['base']"),
    ("stages: [{name: pta, parent: cann, script: x}]\n", "custom stage 'pta' takes the name of a built-in stage"),
    *[(f"stages: [{{name: {name}, parent: pta, script: x}}]\n",
       f"custom stage '{name}' takes a name the build gives its helper stages")
      for name in ("pta-native", "native-scheme", "native-tools", "ab-capture", "app-sdists")],
])
def test_stage_names_are_checked_against_the_registry(tmp_path, text, words):
    result = cli("plan", "-C", write(tmp_path, text))
    assert result.returncode == 1 and words in result.stderr and "ascend-build.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_schema_command_prints_the_json_schema():
    result = cli("schema")
    schema = json.loads(result.stdout)
    assert {"base_image", "target", "pins", "stages", "matrix", "user"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False


def delivery(tmp_path, option, engine):
    return settings_for(tmp_path, Options(delivery=option, host="127.0.0.1"), engine).delivery.name


def test_mount_delivery_needs_buildkit_or_podman(tmp_path):
    with pytest.raises(ConfigError, match="mount delivery needs BuildKit or podman"):
        delivery(tmp_path, "mount", Docker("docker"))
    assert delivery(tmp_path, "mount", DockerBuildKit("docker")) == "mount"
    assert delivery(tmp_path, "mount", Podman()) == "mount"
    assert delivery(tmp_path, "auto", Docker("docker")) == "http"



# -- hostile and careless configs: one ConfigError naming the file and the fix ---------------------


@pytest.mark.parametrize("text, words", [
    ("target: pta\ntarget: cann\n", "key 'target' appears twice (lines 1 and 2)"),
    ("user:\n  name: a\n  uid: 1\n  name: b\n", "key 'name' appears twice (lines 2 and 4)"),
    ("base_image: \"ubuntu\\nRUN touch /PWNED\"\n", "base_image: contains the control character '\\n'"),
    ("base_image: ubuntu:22.04 AS evil\n", "base_image: 'ubuntu:22.04 AS evil' is not an image reference"),
    ("labels: {\"a b\": x}\n", "is not a label key"),
    ("labels: {team: \"a\\nLABEL x=y\"}\n", "labels.team: contains the control character"),
    ("stages: [{name: app, parent: mindie, script: x, env: {\"A B\": x}}]\n", "is not an environment variable name"),
    ("timezone: \"UTC; touch /PWNED\"\n", "timezone:"),
    ("system_packages: [\"vim; id\"]\n", "system_packages.0:"),
    ("user: {name: \"$(id)\"}\n", "user.name:"),
    ("user: {uid: -1}\n", "user.uid:"),
    ("install_path: /usr/local/../Ascend\n", "install_path:"),
    ("install_path: relative/Ascend\n", "install_path:"),
    ("pip_index_url: \"https://x.org/simple;id\"\n", "pip_index_url:"),
    ("pip_trusted_host: \"x.org id\"\n", "pip_trusted_host:"),
    ("stages: [{name: app, parent: mindie, script: x}, {name: app, parent: pta, script: y}]\n",
     "custom stage 'app' is defined more than once"),
    ("stages: [{name: app, parent: mindie, script: x, files: [\"app files.txt\"]}]\n", "stages.0.files.0:"),
    ("stages: [{name: app, parent: mindie, script: \"a\\rb\"}]\n", "LF line endings"),
    ("chip: ../../x\n", "chip:"),
    ("matrix: {chip: [\"910b;id\"]}\n", "matrix.chip.0:"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than"),
    ("x: " + "{a: " * 30 + "1" + "}" * 30 + "\n", "nested deeper than"),
    ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", "more than 100000 values"),
    ("a: &a [*a]\n", "nested deeper than"),
    ("timezone: 2020-13-45\n", "a value cannot be read"),
    ("stages: app\n", "stages: Input should be a valid list"),
    ("labels: [a, b]\n", "labels: Input should be a valid dictionary"),
    ("user: 5\n", "user:"),
])
def test_hostile_configs_are_one_clear_message(tmp_path, text, words):
    with pytest.raises(ConfigError) as err:
        load_spec(write(tmp_path, text))
    assert words in err.value.message and "ascend-build.yaml" in err.value.message and err.value.fix


def test_valid_values_pass(tmp_path):
    spec = load_spec(write(tmp_path, (
        "base_image: 'localhost:5000/team/ubuntu:22.04@sha256:" + "a" * 64 + "'\n"
        "install_path: /opt/Ascend\ntimezone: Asia/Shanghai\nsystem_packages: [gcc-c++, vim=2:8.2]\n"
        "pip_index_url: https://mirror.example.com/pypi/simple/\npip_trusted_host: mirror.example.com\n"
        "labels: {org.opencontainers.image.title: \"昇腾 image\"}\nuser: {name: HwHiAiUser, uid: 1001}\n"
        "stages: [{name: app, parent: mindie, files: [models/app.py], script: \"set -e\\n\\techo hi\\n\", env: {APP_HOME: /opt/app}}]\n")))
    assert spec.labels == {"org.opencontainers.image.title": "昇腾 image"} and spec.stages[0].files == ["models/app.py"]


def test_non_utf8_config(tmp_path):
    (tmp_path / "ascend-build.yaml").write_bytes("target: pta  # 训练镜像\n".encode("gbk"))
    with pytest.raises(ConfigError) as err:
        load_spec(tmp_path)
    assert "is not UTF-8" in err.value.message and "iconv" in err.value.fix


def test_utf8_with_bom_is_fine(tmp_path):
    (tmp_path / "ascend-build.yaml").write_bytes(b"\xef\xbb\xbftarget: pta\n")
    assert load_spec(tmp_path).target == "pta"


def test_huge_config(tmp_path):
    (tmp_path / "ascend-build.yaml").write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_spec(tmp_path)


def test_unreadable_config(tmp_path, monkeypatch):
    (tmp_path / "ascend-build.yaml").mkdir()
    with pytest.raises(ConfigError, match="cannot read .*ascend-build.yaml"):
        load_spec(tmp_path)


def test_workdir_that_is_a_file_or_missing(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        load_spec(tmp_path / "f")
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "missing")


def test_cli_option_errors_name_the_option(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_spec(tmp_path, base_image="ubuntu\nRUN id")
    assert "--base-image: contains the control character" in err.value.message


@pytest.mark.parametrize("args", [
    ["plan", "--base-image", "ubuntu\nRUN touch /PWNED"],
    ["check", "-C", "ascend-build.yaml"],
])
def test_cli_refuses_without_traceback(tmp_path, args):
    (tmp_path / "ascend-build.yaml").write_text("target: pta\n")
    args = [a if a != "ascend-build.yaml" else str(tmp_path / a) for a in args]
    if "-C" not in args:
        args += ["-C", str(tmp_path)]
    result = cli(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "error:" in result.stderr


def test_merge_keys_may_be_overridden(tmp_path):
    spec = load_spec(write(tmp_path, (
        "stages:\n  - name: app\n    parent: mindie\n    script: 'true'\n    env:\n      <<: {A: '1', B: '2'}\n      A: '3'\n")))
    assert spec.stages[0].env == {"A": "3", "B": "2"}


def test_config_that_is_a_fifo_or_a_link_loop(tmp_path):
    import os

    os.mkfifo(tmp_path / "ascend-build.yaml")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_spec(tmp_path)
    (tmp_path / "ascend-build.yaml").unlink()
    (tmp_path / "ascend-build.yaml").symlink_to(tmp_path / "ascend-build.yaml")
    with pytest.raises(ConfigError, match="cannot read .*ascend-build.yaml"):
        load_spec(tmp_path)
