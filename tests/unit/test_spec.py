"""ascend-build.yaml: defaults, did-you-mean for unknown keys, clear errors, the JSON schema."""
import json

import pytest

from clirun import cli
from ascend_build.engines.docker import Docker, DockerBuildKit
from ascend_build.engines.podman import Podman
from ascend_build.errors import ConfigError
from ascend_build.settings import Options, resolve
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
    ("skip: [base]\n", "cannot skip"),
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


def test_schema_command_prints_the_json_schema():
    result = cli("schema")
    schema = json.loads(result.stdout)
    assert {"base_image", "target", "pins", "stages", "matrix", "user"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False


def delivery(tmp_path, option, engine):
    return resolve(tmp_path, Options(delivery=option, host="127.0.0.1"), engine).delivery


def test_mount_delivery_needs_buildkit_or_podman(tmp_path):
    with pytest.raises(ConfigError, match="mount delivery needs BuildKit or podman"):
        delivery(tmp_path, "mount", Docker("docker"))
    assert delivery(tmp_path, "mount", DockerBuildKit("docker")) == "mount"
    assert delivery(tmp_path, "mount", Podman()) == "mount"
    assert delivery(tmp_path, "auto", Docker("docker")) == "http"
