"""Hostile images on a real engine: tiny images of the base image with bad labels. `verify` and
`inspect` end in one message naming the image and the label (exit 1, no traceback) and leave no
container; labels too large for one command-line argument do not break verify."""
import json
import os
import subprocess

import pytest

from clirun import cli

pytestmark = pytest.mark.e2e

TARGET = "io.ascend-build.target=base io.ascend-build.stages=base"
IMAGES = {
    "json": f"LABEL {TARGET} io.ascend-build.set-env='[\"source /x.sh\"'",
    "option": f"LABEL {TARGET} org.opencontainers.image.base.name=--help",
    "large": "\n".join([f"LABEL {TARGET}"] + [f"LABEL org.example.blob{i}={'b' * (50 << 10)}" for i in range(4)]),
}


@pytest.fixture(scope="module")
def hostile(docker_bin, base_image):
    """name -> tag of each hostile image; all removed afterwards."""
    tags = {name: f"ascend-build-test/hostile-{os.getpid()}:{name}" for name in IMAGES}
    try:
        for name, lines in IMAGES.items():
            subprocess.run([docker_bin, "build", "-q", "-t", tags[name], "-"], input=f"FROM {base_image}\n{lines}\n",
                           text=True, check=True, capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0"})
        yield tags
    finally:
        subprocess.run([docker_bin, "rmi", "-f", *tags.values()], capture_output=True)


def containers(docker_bin, tag):
    return subprocess.run([docker_bin, "ps", "-aq", "--filter", f"ancestor={tag}"], capture_output=True,
                          text=True).stdout.split()


@pytest.mark.parametrize("name,label", [("json", "io.ascend-build.set-env"),
                                        ("option", "org.opencontainers.image.base.name")])
@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_a_bad_label_is_one_message(hostile, docker_bin, command, name, label):
    result = cli(command, "--engine", "docker", hostile[name], timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in text and text.count("error:") == 1, text
    assert hostile[name] in text and label in text and "fix:" in text, text
    assert containers(docker_bin, hostile[name]) == []


def test_large_labels_do_not_overflow_a_command_line(hostile, docker_bin):
    result = cli("verify", "--engine", "docker", "--json", hostile["large"], timeout=300)
    assert "Traceback" not in result.stderr and "Argument list too long" not in result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "probe runs in the image" not in checks and "no installer or download folder left" in checks, checks
    assert containers(docker_bin, hostile["large"]) == []
    shown = json.loads(cli("inspect", "--engine", "docker", "--json", hostile["large"], timeout=300).stdout)
    assert len(shown["labels"]["org.example.blob3"]) == 50 << 10
