"""Settings are resolved once: build, plan, export and bake read one model of the build, so what
`plan --engine E` prints is what `build --engine E` runs."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from clirun import cli
from fakes import docker_client
from ascend_build.build import BuildOptions, run_build
from ascend_build.capture import SOURCED
from ascend_build.engines.base import Engine
from ascend_build.engines.docker import Docker, DockerBuildKit
from ascend_build.engines.podman import Podman
from ascend_build.errors import ConfigError, PackageError
from ascend_build.plan import plan_for
from ascend_build.render import context_files
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec

BASE = "localhost/ascend-build-base:bookworm"


FAKE_SET_ENV = {"FAKE_HOME": "/usr/local/Ascend/fake"}   # what sourcing gives in a FakeEngine's containers


class FakeEngine(Engine):
    """An engine that builds nothing: it records the request (writes an image id to its iidfile),
    answers inspect from memory and a container sourcing set_env.sh files with FAKE_SET_ENV."""

    name = "fake"
    bind_mounts = build_secrets = True

    def __init__(self, secrets: bool = True, bridge: str = "10.9.8.7"):
        super().__init__("fake-engine")
        self.build_secrets, self.bridge, self.requests = secrets, bridge, []
        self.dockerfiles, self.secret_texts = [], []

    def build(self, req):
        self.requests.append(req)
        self.dockerfiles.append(Path(req.context, "Dockerfile").read_text())
        self.secret_texts.append({k: Path(v).read_text() for k, v in req.secrets.items()})
        self.returncode = 0
        if req.iidfile:
            with open(req.iidfile, "w") as out:
                out.write("sha256:1")
        return iter(())

    def run_container(self, image, command=(), stdin=None, timeout=300, **how):
        if how.get("entrypoint") == "bash":        # the set_env.sh capture: both environments, NUL-separated
            out = "PATH=/usr/bin\0" + SOURCED + "".join(f"{k}={v}\0" for k, v in {"PATH": "/usr/bin", **FAKE_SET_ENV}.items())
            return subprocess.CompletedProcess([image, *command], 0, out, "")
        out = json.dumps({"before": {"PATH": "/usr/bin"}, "after": {"PATH": "/usr/bin", **FAKE_SET_ENV}})
        return subprocess.CompletedProcess([image, *command], 0, out + "\n", "")

    def find_image(self, image):
        return {"Id": "sha256:base", "Size": 1}

    def inspect(self, image):
        return {"Id": "sha256:0", "Size": 1}

    def layers(self, image):
        return []

    def bridge_address(self):
        return self.bridge


class Quiet:
    def info(self, text): pass
    def stages(self, names, serve_bytes): pass
    def event(self, event): pass
    def log(self, line): pass
    def transfer(self, transfer): pass


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("settings") / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


def configured(workdir, **config):
    path = workdir / "ascend-build.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **config}))


def test_delivery_from_the_config_reaches_plan(workdir):
    configured(workdir, delivery="mount")
    try:
        settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64"))
        text = context_files(plan_for(settings))["Dockerfile"]
    finally:
        configured(workdir, delivery="auto")
    assert settings.delivery.name == "mount" and not settings.delivery_defaulted
    assert "--mount=type=bind,source=pkgs/cann" in text


@pytest.mark.parametrize("engine, secret", [(Docker("docker"), False), (DockerBuildKit("docker"), True), (Podman(), True)])
def test_the_url_is_a_secret_exactly_when_the_engine_takes_secrets(workdir, engine, secret):
    settings = settings_for(workdir, Options(target="cann", base_image=BASE, platform="x86_64", host="127.0.0.1"), engine)
    text = context_files(plan_for(settings))["Dockerfile"]
    assert settings.url_secret is secret
    assert ("--mount=type=secret,id=ascend-pkg-url" in text) is secret
    assert ("ARG ASCEND_PKG_URL" in text) is not secret


def test_network_and_server_host_come_from_the_engine(tmp_path):
    podman, docker = settings_for(tmp_path, Options(), Podman()), settings_for(tmp_path, Options(), FakeEngine())
    assert (podman.network, podman.server_host) == ("host", "127.0.0.1")
    assert (docker.network, docker.server_host) == ("bridge", "10.9.8.7")
    assert settings_for(tmp_path, Options(host="192.0.2.1"), FakeEngine()).server_host == "192.0.2.1"
    assert settings_for(tmp_path, Options(delivery="mount"), FakeEngine()).server_host is None


@pytest.mark.parametrize("secrets", [True, False])
def test_build_runs_the_dockerfile_plan_prints(workdir, secrets, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:8080")
    engine = FakeEngine(secrets=secrets, bridge="127.0.0.1")
    settings = settings_for(workdir, Options(target="pta", base_image=BASE, platform="x86_64"), engine)
    report = run_build(settings, BuildOptions(tag="t:1", port=0), Quiet())
    built = engine.dockerfiles[-1]
    assert not any((workdir / ".ascend-build/runs").iterdir())          # the run's folder is gone after
    assert built == context_files(plan_for(settings), captured={"cann": FAKE_SET_ENV})["Dockerfile"]
    request = engine.requests[-1]
    assert request.build_args["no_proxy"] == "127.0.0.1"      # the settings' host, not one read back from the URL
    assert bool(request.secrets) is secrets and ("FTP_PROXY" in request.build_args) is not secrets
    assert "ASCEND_PKG_URL" not in request.build_args          # a build argument a RUN uses is a cache key
    assert report["engine"] == "fake" and report["image_id"] == "sha256:0"


LABELLED = """  "image inspect") echo '[{"Id": "sha256:0", "Size": 1, "Config": {"Labels": {"io.ascend-build.target": "pta"}}}]' ;;
  "run --rm") case "$*" in *" -i "*) read -r first ;; esac     # run_python: the arguments' line first
    case "$*" in *"--entrypoint bash"*) first=bash ;; esac      # the set_env.sh capture
    case "$first" in bash) printf '\\0ascend-build: sourced\\0FAKE_HOME=/x\\0' ;;
      '["capture"'*) echo '{"before": {}, "after": {"FAKE_HOME": "/x"}}' ;; *) echo '[]' ;; esac ;;
"""


def my_docker(tmp_path) -> Path:
    """A fake docker client at tmp_path/my-docker whose images say they are built to pta."""
    return docker_client(tmp_path / "my-docker", LABELLED)


def test_build_verify_uses_the_engine_build_chose(workdir, tmp_path):
    """`build --verify` verifies with the engine the build used: --docker-bin is kept."""
    docker = my_docker(tmp_path)
    result = cli("build", "-C", workdir, "--engine", "docker", "--docker-bin", docker, "--host", "127.0.0.1",
                 "--port", "0", "--target", "cann", "--platform", "x86_64", "--base-image", BASE, "--verify",
                 env={**os.environ, "ASCEND_BUILD_DOCKER": "", "PATH": "/nonexistent"})
    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "my-docker.calls").read_text().splitlines()
    assert any(c.startswith("build ") for c in calls)
    assert any(re.match(r"run --rm -i --name ascend-build-verify-[0-9a-f]{8} --network none --entrypoint python3 ", c)
               for c in calls), calls


def test_one_stage_chain_catches_loops(tmp_path):
    loop = BuildSpec(stages=[{"name": "a", "parent": "b", "script": "x"}, {"name": "b", "parent": "a", "script": "x"}])
    with pytest.raises(ConfigError, match="loop"):
        settings_for(tmp_path, Options(target="a"), spec=loop)


def test_unknown_delivery_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown delivery"):
        settings_for(tmp_path, Options(delivery="ftp"))


def test_the_config_accepts_exactly_the_deliveries_there_are():
    from typing import get_args

    from ascend_build.delivery import AUTO, DELIVERIES

    assert get_args(BuildSpec.model_fields["delivery"].annotation) == (AUTO, *DELIVERIES)


def test_the_packages_are_checked_before_the_engine_is_named(workdir, tmp_path):
    """A broken set fails with the catalog's message; the build never reports its engine."""
    class Recording(Quiet):
        def __init__(self):
            self.lines = []

        def info(self, text):
            self.lines.append(text)

    view, engine = Recording(), FakeEngine()
    spec = BuildSpec(pins={"toolkit": "no-such-file.run"})
    settings = settings_for(workdir, Options(target="cann", platform="x86_64", host="127.0.0.1"), engine, spec=spec)
    with pytest.raises(PackageError, match="pin-not-found"):
        run_build(settings, BuildOptions(engine_reason="asked"), view)
    assert not any(line.startswith("engine:") for line in view.lines) and not engine.requests
