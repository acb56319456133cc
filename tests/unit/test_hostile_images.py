"""Hostile images: an image's labels and whatever its programs print are untrusted input. A
malformed label, an option where an image name goes, labels too large for a command line, a
probe printing nonsense: `verify` and `inspect` end in one message naming the image and the
label (or a failed check), exit 1, no traceback, and start no container for a bad label."""
import json
import os
from pathlib import Path

import pytest

from clirun import cli
from fakes import docker_client
from ascend_build.engines.docker import Docker
from ascend_build.errors import ConfigError, ImageError
from ascend_build.readback import MAX_LABEL, image_argument, read_labels

IMAGE = "hostile/image:1"
TARGET = {"io.ascend-build.target": "base", "io.ascend-build.stages": "base"}
# `image inspect` answers with the labels in <client>.labels; `run` (run_python) with <client>.probe,
# after reading the arguments' line; `history` with one step
ANSWERS = """  "image inspect") [ -f "$0.labels" ] || exit 1; cat "$0.labels" ;;
  "run --rm") read -r first; cat "$0.probe" ;;
  "history --no-trunc") echo '"RUN x"	7' ;;
"""


def fake_docker(tmp_path: Path, labels: dict, probe: str = "[]") -> Path:
    docker = docker_client(tmp_path / "docker", ANSWERS)
    (tmp_path / "docker.labels").write_text(json.dumps([{"Id": "sha256:1", "Size": 1, "Config": {"Labels": labels}}]))
    (tmp_path / "docker.probe").write_text(probe + "\n")
    return docker


def run_cli(tmp_path: Path, docker: Path, command: str, *args):
    env = {**os.environ, "ASCEND_BUILD_DOCKER": str(docker), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return cli(command, "--engine", "docker", *args, env=env, timeout=120)


def calls(docker: Path) -> list:
    path = Path(f"{docker}.calls")
    return path.read_text().splitlines() if path.exists() else []


def one_message(result, *words) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "Traceback" not in text and text.count("error:") == 1 and "fix:" in text, text
    for word in words:
        assert word in text, (word, text)


BAD_LABELS = [
    ("io.ascend-build.set-env", '["source /x.sh"'),                 # malformed JSON
    ("io.ascend-build.set-env", '{"a": 1}'),                        # JSON, not a list of lines
    ("io.ascend-build.set-env", json.dumps(["x" * 40] * 2000)),     # larger than a label may be
    ("io.ascend-build.target", "--help"),
    ("io.ascend-build.stages", "base,$(reboot)"),
    ("io.ascend-build.install-path", "../../etc"),
    ("io.ascend-build.user", "--privileged"),
    ("io.ascend-build.toolkit.file", "a/../../b.run"),
    ("io.ascend-build.toolkit.sha256", "abc"),
    ("io.ascend-build.toolkit.version", "v" * (50 << 10)),
    ("org.opencontainers.image.base.name", "--help"),
]


@pytest.mark.parametrize("key,value", BAD_LABELS, ids=[f"{k}={v[:12]}" for k, v in BAD_LABELS])
def test_a_bad_label_is_one_image_error_naming_it(key, value):
    info = {"Config": {"Labels": {**TARGET, key: value}}}
    with pytest.raises(ImageError) as err:
        read_labels(info, IMAGE)
    assert IMAGE in err.value.message and key in err.value.message and err.value.fix
    assert len(err.value.message) < 600


@pytest.mark.parametrize("info", [None, [], {"Config": None}, {"Config": {"Labels": ["a"]}},
                                  {"Config": {"Labels": {**TARGET, "io.ascend-build.user": 5}}},
                                  {"Config": {"Labels": {**TARGET, **{f"org.x.{i}": "v" * 60000 for i in range(20)}}}}])
def test_labels_of_the_wrong_shape_or_size_are_refused(info):
    with pytest.raises(ImageError):
        read_labels(info, IMAGE)


def test_labels_the_tool_does_not_use_are_only_shown():
    labels = {**TARGET, "org.example.note": "--help $(x) \n", "io.ascend-build.toolkit.version": "8.5.0"}
    read = read_labels({"Config": {"Labels": labels}}, IMAGE)
    assert read.shown == labels and "org.example.note" not in read.used
    assert read.used["io.ascend-build.toolkit.version"] == "8.5.0" and read.stages == ["base"] and read.set_env == []


@pytest.mark.parametrize("name", ["--help", "-x", "a b", "Upper", "", "x" * 600, "a\nb"])
def test_an_image_argument_is_a_reference_never_an_option(name):
    with pytest.raises(ConfigError):
        image_argument(name)
    assert image_argument("sha256:" + "a" * 64) and image_argument("localhost:5000/a/b:1.0") and image_argument("abc123")


def test_the_engine_puts_the_image_after_double_dash(tmp_path):
    docker = fake_docker(tmp_path, TARGET)
    engine = Docker(str(docker))
    engine.inspect(IMAGE)
    engine.find_image("--help")
    engine.layers("--help")
    engine.pull("--help")
    assert calls(docker) == [f"image inspect -- {IMAGE}", "image inspect -- --help",
                             "history --no-trunc --human=false --format {{json .CreatedBy}}\t{{.Size}} -- --help",
                             "pull -- --help"]


def test_history_text_of_any_shape_is_read_as_json(tmp_path):
    docker = docker_client(tmp_path / "docker", """  "history --no-trunc") cat "$0.history" ;;\n""")
    rows = [json.dumps("RUN a\tb\nc") + "\t5", '["list"]\t6', "not json\t7", '"ok"\tx']
    (tmp_path / "docker.history").write_text("\n".join(rows) + "\n")
    assert Docker(str(docker)).layers(IMAGE) == [{"created_by": "RUN a\tb\nc", "size_bytes": 5},
                                                  {"created_by": "ok", "size_bytes": 0}]


def test_an_inspect_answer_that_is_not_a_record_is_an_engine_error(tmp_path):
    from ascend_build.errors import EngineError

    docker = docker_client(tmp_path / "docker", """  "image inspect") echo 'Usage: docker image inspect' ;;\n""")
    with pytest.raises(EngineError, match="did not print an image record"):
        Docker(str(docker)).inspect(IMAGE)


@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_a_malformed_label_stops_the_command_before_any_container(tmp_path, command):
    docker = fake_docker(tmp_path, {**TARGET, "io.ascend-build.set-env": "[not json"})
    result = run_cli(tmp_path, docker, command, IMAGE)
    one_message(result, IMAGE, "io.ascend-build.set-env", "is not valid JSON")
    assert not any(c.startswith("run ") for c in calls(docker))


@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_a_base_name_label_that_is_an_option_is_refused(tmp_path, command):
    docker = fake_docker(tmp_path, {**TARGET, "org.opencontainers.image.base.name": "--help"})
    result = run_cli(tmp_path, docker, command, IMAGE)
    one_message(result, IMAGE, "org.opencontainers.image.base.name")
    assert not any("--help" in c for c in calls(docker))


def test_an_image_argument_that_is_an_option_is_refused(tmp_path):
    docker = fake_docker(tmp_path, TARGET)
    one_message(run_cli(tmp_path, docker, "verify", "--", "--help"), "--help")
    assert not any("--help" in c for c in calls(docker))


def test_large_labels_go_on_stdin_not_on_a_command_line(tmp_path):
    """Four 50 kB labels (one argv entry holds at most 128 KiB): verify runs; no argument of any
    engine call is longer than a few kB; labels the probe does not read are not sent."""
    big = {f"org.example.blob{i}": "b" * (50 << 10) for i in range(4)}
    lines = ["export A_%d=%s" % (i, "p" * 1000) for i in range(50)]       # 50 kB of set-env lines
    docker = fake_docker(tmp_path, {**TARGET, **big, "io.ascend-build.set-env": json.dumps(lines)},
                         probe='[{"name": "probe", "ok": true, "detail": ""}]')
    result = run_cli(tmp_path, docker, "verify", IMAGE)
    text = result.stdout + result.stderr
    assert "Traceback" not in text and "Argument list too long" not in text, text
    assert all(len(c) < 8000 for c in calls(docker)), max(map(len, calls(docker)))
    assert sum(c.startswith("run ") for c in calls(docker)) == 2           # the probe and the env check
    assert len(json.dumps(lines)) < MAX_LABEL


@pytest.mark.parametrize("probe", ['[1, 2]', '{"name": "x"}', '[{"name": "x", "ok": "yes"}]', "not json", "",
                                   '[{"name": "x", "ok": true, "detail": "' + "d" * 100000 + '"}]'])
def test_whatever_the_probe_prints_is_a_check_not_a_traceback(tmp_path, probe):
    docker = fake_docker(tmp_path, {**TARGET, "io.ascend-build.user": "app"}, probe=probe)
    result = run_cli(tmp_path, docker, "verify", IMAGE, "--json")
    assert "Traceback" not in result.stderr and result.returncode in (0, 1), result.stderr
    found = json.loads(result.stdout)
    assert all(len(c["detail"]) <= 600 for c in found["checks"]) and found["ok"] is False
