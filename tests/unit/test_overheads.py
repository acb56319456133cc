"""What a no-change rebuild costs in engine calls (behaviour, not time): the engine probe is
cached per daemon and client, the base image's Python per image id (one inspect for its id), the
base image and the result are inspected once more, the history is asked only for a new image;
every phase is timed."""
import json
import os
import re

import pytest

from clirun import cli
from fakes import docker_client
from ascend_build.engines import detect, identity
from ascend_build.scaffold import scaffold
from ascend_build.timings import PHASES

BASE = "localhost/ascend-build-base:bookworm"
ANSWERS = """  "image inspect") echo '[{"Id": "sha256:0", "Size": 1}]' ;;
  "network inspect") echo 127.0.0.1 ;;
  "version --format") echo 20.10.24 ;;
  "buildx version") exit 1 ;;
  run\\ *) case "$*" in *" -i "*) read -r first ;; esac     # run_python: the arguments' line first
    case "$*" in *"--entrypoint bash"*) first=bash ;; esac      # the set_env.sh capture
    case "$first" in
      bash) printf '\\0ascend-build: sourced\\0FAKE_HOME=/x\\0' ;;
      '["capture"'*) echo '{"before": {}, "after": {"FAKE_HOME": "/x"}}' ;;
      *) echo '{"version": "3.11.2", "glibc": "glibc 2.36", "packages": {"pip": "23.0.1"}}' ;;
    esac ;;
  history\\ *) printf '"RUN x"\\t5\\n' ;;
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake docker client (logging its calls), a stand-in daemon socket and pid file, and an
    empty cache folder: the environment of the process under test."""
    (tmp_path / "bin").mkdir()
    docker = docker_client(tmp_path / "bin" / "docker", ANSWERS)
    sock, pid = tmp_path / "docker.sock", tmp_path / "docker.pid"
    sock.touch()
    pid.write_text(str(os.getpid()))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "DOCKER_HOST": f"unix://{sock}", "ASCEND_BUILD_DOCKER": str(docker)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setattr(identity, "PID_FILE", str(pid))
    return docker


def calls(docker):
    path = docker.with_name("docker.calls")
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return lines


def test_the_probe_is_asked_once_per_daemon_and_client(fake, tmp_path):
    first = detect.choose("auto")
    assert first[0].name == "buildkit" and first[0].bridge == "127.0.0.1"
    assert any(c == "info" for c in calls(fake))
    again = detect.choose("auto")
    assert calls(fake) == [] and again[1] == first[1] and again[0].bridge == "127.0.0.1"

    os.utime(fake, ns=(1, 1))                               # another client binary
    detect.choose("auto")
    assert "info" in calls(fake)
    sock = tmp_path / "docker.sock"                         # a restarted daemon makes its socket anew
    sock.rename(tmp_path / "old.sock")
    sock.touch()
    detect.choose("auto")
    assert "info" in calls(fake)
    detect.choose("docker")                                 # another question, its own answer
    assert "info" in calls(fake)
    detect.choose("auto")
    assert calls(fake) == []


@pytest.mark.parametrize("broken", ["dead daemon", "remote daemon", "corrupt cache"])
def test_the_probe_runs_again_when_the_cache_cannot_be_trusted(fake, tmp_path, monkeypatch, broken):
    detect.choose("auto")
    calls(fake)
    if broken == "dead daemon":                             # killed: its socket stays, its pid is gone
        (tmp_path / "docker.pid").write_text("999999999")
    elif broken == "remote daemon":
        monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.1:2376")
    else:
        detect.CACHE.path.write_text('{"x": ')
    for _ in range(2):
        detect.choose("auto")
        assert "info" in calls(fake)
        if broken == "corrupt cache":
            break


def demo_build(tmp_path):
    """A 910b/3.11 stand-in folder and the `build` command line (with its environment) that the
    fake client answers: target cann, docker classic, no other docker on PATH."""
    workdir = tmp_path / "w"
    scaffold(workdir, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    args = ["build", "-C", workdir, "-t", "t:1", "--target", "cann", "--platform", "x86_64", "--base-image", BASE,
            "--port", "0", "--engine", "docker"]
    return args, {**os.environ, "PATH": "/nonexistent"}


def test_a_no_change_rebuild_makes_three_engine_calls(fake, tmp_path):
    args, env = demo_build(tmp_path)
    first = cli(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    made = calls(fake)
    assert any(c.startswith("history ") for c in made) and any(c.startswith("run ") for c in made)
    again = cli(*args, "--timings", "--report", tmp_path / "report.json", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    made = calls(fake)
    assert [c.split()[0] for c in made] == ["image", "build", "image"], made   # no `run`: Python cached
    assert made[0] == f"image inspect -- {BASE}" and made[2] == "image inspect -- t:1"   # the base is asked once
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["timings"]) == list(PHASES) and all(s >= 0 for s in report["timings"].values())
    assert report["layers"] == [{"created_by": "RUN x", "size_bytes": 5}]
    assert "engine probe" in again.stderr and "where the time went" in again.stderr


def test_a_new_image_asks_its_history(fake, tmp_path):
    from ascend_build.build import image_layers
    from ascend_build.engines.docker import Docker
    from ascend_build.workdir import State

    state, engine = State.of(tmp_path), Docker(str(fake))
    warnings = []
    assert image_layers(engine, state, "t:1", "sha256:a", warnings.append) == image_layers(engine, state, "t:1", "sha256:a", warnings.append)
    assert len(calls(fake)) == 1 and not warnings
    image_layers(engine, state, "t:1", "sha256:b", warnings.append)
    assert [c.split()[0] for c in calls(fake)] == ["history"]


def test_a_custom_stage_file_is_hashed_once_while_unchanged(tmp_path, monkeypatch):
    from ascend_build import plan
    from ascend_build.catalog.checksums import hash_file

    hashed = []
    monkeypatch.setattr(plan, "hash_file", lambda path: hashed.append(path) or hash_file(path))
    (tmp_path / "app.py").write_text("print(1)\n")
    first = plan.custom_files(tmp_path, ["app.py"])["app.py"]
    again = plan.custom_files(tmp_path, ["app.py"])["app.py"]
    assert len(hashed) == 1 and again.sha256 == first.sha256
    (tmp_path / "app.py").write_text("print(2)\n")
    assert plan.custom_files(tmp_path, ["app.py"])["app.py"].sha256 != first.sha256 and len(hashed) == 2


def test_an_image_made_to_capture_is_removed_only_where_it_is_no_cache(tmp_path):
    from ascend_build.engines.docker import Docker, DockerBuildKit
    from ascend_build.engines.podman import Podman

    docker = docker_client(tmp_path / "docker", """  "image inspect") case "$4" in
      sha256:tagged) echo '[{"Id": "sha256:tagged", "RepoTags": ["a:1"]}]' ;;
      *) echo '[{"Id": "sha256:1", "RepoTags": []}]' ;;
    esac ;;
""")
    Docker(str(docker)).discard("sha256:1")
    Podman(str(docker)).discard("sha256:1")
    assert calls(docker) == []                              # their layer cache is the images
    kit = DockerBuildKit(str(docker))
    kit.discard("sha256:tagged")                            # somebody's tag: kept
    kit.discard("sha256:1")
    assert calls(docker) == ["image inspect -- sha256:tagged", "image inspect -- sha256:1", "image rm -- sha256:1"]
    Docker(str(docker)).discard("sha256:1", failed=True)    # a failed capture: no build follows to reuse it
    assert calls(docker) == ["image inspect -- sha256:1", "image rm --no-prune -- sha256:1"]   # its parents stay as cache


def test_chip_and_python_on_the_command_line_choose_the_variant(fake, tmp_path):
    args, env = demo_build(tmp_path)
    other = cli(*args, "--chip", "310p", env=env)
    assert other.returncode == 1 and "310p" in other.stderr and "Traceback" not in other.stderr
    assert not any(c.startswith("build ") for c in calls(fake))
    python = cli(*args, "--python", "3.10", env=env)
    assert python.returncode == 1 and "3.10" in python.stderr
    same = cli(*args, "--chip", "910b", "--python", "3.11", env=env)
    assert same.returncode == 0, same.stderr
    assert any(c.startswith("build ") for c in calls(fake))


def test_no_cache_is_a_new_cache_epoch_that_later_builds_keep(fake, tmp_path):
    """--no-cache builds every stage once: not the engine's --no-cache on each build of the run (the
    set_env.sh capture's build, then the image's), which built the stages before a capture again
    in every build; a new epoch in the Dockerfile, kept by the builds after it, so they reuse
    those layers and never an older build's."""
    args, env = demo_build(tmp_path)
    env = {**env, "ASCEND_BUILD_FULL": "1"}
    copy = 'for last; do :; done; while IFS= read -r l; do printf "%s\\n" "$l"; done < "$last/Dockerfile" >> "$0.dockerfiles"'
    fake.write_text(fake.read_text().replace('case "$1 $2" in', f'case "$1 $2" in\n  "build --rm") {copy} ;;', 1))
    dockerfiles = fake.with_name("docker.dockerfiles")

    def epochs(*extra):
        done = cli(*args, *extra, env=env)
        assert done.returncode == 0, done.stderr
        builds = [c for c in calls(fake) if c.startswith("build ")]
        texts = dockerfiles.read_text().split("# Generated by ascend-build")[1:]
        dockerfiles.unlink()
        assert len(texts) == len(builds) and not any("--no-cache" in c for c in builds)
        return builds, [re.findall(r"^ARG AB_CACHE_EPOCH=(\w+)$", t, re.M) for t in texts]

    builds, found = epochs()
    assert len(builds) == 2 and found == [[], []]             # the capture's build, the image's: no epoch
    _, fresh = epochs("--no-cache")
    epoch = fresh[0][0]
    assert re.fullmatch(r"[0-9a-f]{12}", epoch) and fresh == [[epoch]] * 2    # a new capture too (new Dockerfile)
    builds, kept = epochs()
    assert len(builds) == 1 and kept == [[epoch]]              # its capture is known; the same layers
    _, again = epochs("--no-cache")
    assert again[0][0] != epoch and len(set(map(tuple, again))) == 1
