"""Ship without a daemon: the QEMU check in the settings, the base image per arch, the refusals
before any build (push, several platforms, insecure registries, cache export), the engines'
cache flags, push and manifest through a fake client."""
import subprocess

import pytest
import yaml

from ascend_build.build import BuildOptions, check_base_arch, run_build
from ascend_build.engines import emulation, registry
from ascend_build.platforms import host_arch
from ascend_build.engines.base import BuildRequest
from ascend_build.engines.docker import Docker, DockerBuildKit
from ascend_build.engines.podman import Podman
from ascend_build.errors import BuildError, ConfigError, EngineError
from ascend_build.publish import Publish, build_and_publish, check_publish, platforms_of
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for
from test_settings import FakeEngine, Quiet

ARM = "localhost/base:arm64"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("ship") / "w"
    scaffold(root, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    return root


@pytest.fixture
def no_qemu(tmp_path, monkeypatch):
    folder = tmp_path / "binfmt"
    folder.mkdir()
    (folder / "status").write_text("enabled\n")
    monkeypatch.setattr(emulation, "BINFMT", folder)
    monkeypatch.setattr(emulation, "host_arch", lambda: "x86_64")
    return folder


def test_a_cross_arch_build_stops_with_the_fix_when_qemu_is_missing(tmp_path, no_qemu):
    with pytest.raises(EngineError, match="needs QEMU") as err:
        settings_for(tmp_path, Options(platform="linux/arm64"), FakeEngine())
    assert "qemu-user-static" in err.value.fix
    (no_qemu / "qemu-aarch64").write_text("enabled\ninterpreter /usr/bin/qemu-aarch64-static\n")
    assert settings_for(tmp_path, Options(platform="linux/arm64"), FakeEngine()).platform == "linux/arm64"


def test_bake_checks_qemu_too_but_plan_and_export_do_not(tmp_path, no_qemu):
    with pytest.raises(EngineError, match="needs QEMU"):
        settings_for(tmp_path, Options(platform="aarch64", runs_here=True))
    assert settings_for(tmp_path, Options(platform="aarch64")).arch == "aarch64"


def test_the_engine_gets_a_platform_only_for_another_arch(tmp_path, no_qemu):
    """A native build names no platform (the classic builder's cache misses with one); another
    arch, from the option or the config, does."""
    (no_qemu / "qemu-aarch64").write_text("enabled\n")
    assert settings_for(tmp_path, Options(platform="amd64"), FakeEngine()).platform is None
    assert settings_for(tmp_path, Options(platform="arm64"), FakeEngine()).platform == "linux/arm64"
    (tmp_path / "ascend-build.yaml").write_text("arch: aarch64\n")
    assert settings_for(tmp_path, Options(), FakeEngine()).platform == "linux/arm64"
    native = settings_for(tmp_path, Options(platform="linux/amd64"), FakeEngine())
    assert (native.arch, native.platform) == ("x86_64", None)


def test_base_image_per_arch_and_the_option_overrides_it(tmp_path):
    (tmp_path / "ascend-build.yaml").write_text(yaml.safe_dump(
        {"base_image": "debian:12", "base_images": {"aarch64": ARM}}))
    assert settings_for(tmp_path, Options(platform="aarch64")).base_image == ARM
    assert settings_for(tmp_path, Options(platform="x86_64")).base_image == "debian:12"
    assert settings_for(tmp_path, Options(platform="aarch64", base_image="other:1")).base_image == "other:1"


def test_a_base_image_of_another_arch_is_one_error():
    with pytest.raises(BuildError, match="is for x86_64, but the build is for aarch64") as err:
        check_base_arch({"Architecture": "amd64"}, "debian:12", "aarch64")
    assert "base_images" in err.value.fix
    check_base_arch({"Architecture": "arm64"}, ARM, "aarch64")


class OtherArchBase(FakeEngine):
    """The store holds the base for arm64; its registry has a manifest list with (`lists`) or
    without the build's arch."""

    arch, lists = "arm64", ()

    def inspect(self, image):
        return {"Id": f"sha256:{self.arch}", "Size": 1, "Architecture": self.arch}

    def find_image(self, image):
        return self.inspect(image)

    def pull(self, image, platform=None):
        self.pulled = getattr(self, "pulled", []) + [(image, platform)]
        if platform in self.lists:
            self.arch = platform.split("/")[1]
            return subprocess.CompletedProcess(["pull"], 0, "", "")
        return subprocess.CompletedProcess(["pull"], 1, "", f"no matching manifest for {platform} in the manifest "
                                           "list entries\n")


def test_the_build_refuses_the_base_of_another_arch_before_the_engine_builds(workdir):
    engine = OtherArchBase(bridge="127.0.0.1")
    settings = settings_for(workdir, Options(target="cann", platform="x86_64"), engine)
    with pytest.raises(BuildError, match="here for aarch64 only, and its linux/amd64 image could not be pulled: "
                                         "no matching manifest for linux/amd64"):
        run_build(settings, BuildOptions(port=0), Quiet())
    assert not engine.requests and [p for _, p in engine.pulled] == ["linux/amd64"]
    with pytest.raises(BuildError, match="is for aarch64, but the build is for x86_64"):
        run_build(settings, BuildOptions(port=0, pull="never"), Quiet())


def test_a_manifest_list_base_is_pulled_for_the_builds_arch(workdir):
    engine = OtherArchBase(bridge="127.0.0.1")
    engine.lists = ("linux/amd64", "linux/arm64")
    settings = settings_for(workdir, Options(target="cann", platform="x86_64"), engine)
    report = run_build(settings, BuildOptions(port=0), Quiet())
    assert [p for _, p in engine.pulled] == ["linux/amd64"] and engine.requests
    assert report["base_image"] == settings.base_image


def test_platform_lists():
    assert platforms_of(None) == [None]
    assert platforms_of("linux/amd64, linux/arm64") == ["linux/amd64", "linux/arm64"]
    with pytest.raises(ConfigError, match="twice"):
        platforms_of("amd64,linux/amd64")
    with pytest.raises(ConfigError, match="unknown build platform"):
        platforms_of("linux/amd64,s390x")


@pytest.mark.parametrize("engine, platforms, opts, publish, said", [
    (FakeEngine(), 1, BuildOptions(), Publish(push=True), "needs the name"),
    (FakeEngine(), 2, BuildOptions(), Publish(), "needs the name"),
    (FakeEngine(), 2, BuildOptions(tag="me/mindie:1"), Publish(), "names none"),
    (FakeEngine(), 1, BuildOptions(tag="registry.example.com/m:1"), Publish(True, True), "--allow-insecure-remote"),
    (Docker(), 1, BuildOptions(tag="m:1", cache_to="127.0.0.1:5000/c:1"), Publish(), "--cache-to needs BuildKit"),
])
def test_refusals_come_before_any_build(engine, platforms, opts, publish, said):
    with pytest.raises(ConfigError) as err:
        check_publish(engine, platforms, opts, publish)
    assert said in f"{err.value.message} {err.value.fix}"


def test_what_is_allowed():
    check_publish(FakeEngine(), 2, BuildOptions(tag="localhost:5000/m:1"), Publish(insecure_registry=True))
    check_publish(FakeEngine(), 1, BuildOptions(tag="registry.example.com/m:1"), Publish(True, True, True))
    check_publish(FakeEngine(), 1, BuildOptions(tag="m:1"), Publish())
    check_publish(DockerBuildKit(), 1, BuildOptions(tag="m:1", cache_to="[::1]:5000/c:1"), Publish(insecure_registry=True))


@pytest.mark.parametrize("ref, found", [("127.0.0.1:5000/a/b:1", "127.0.0.1:5000"), ("localhost/b", "localhost"),
                                        ("me/b:1", None), ("b", None), ("reg.example.com/b", "reg.example.com")])
def test_registry_of(ref, found):
    assert registry.registry_of(ref) == found


@pytest.mark.parametrize("reg, loopback", [("127.0.0.1:5000", True), ("127.1.2.3", True), ("localhost:80", True),
                                           ("[::1]:5000", True), ("10.0.0.1:5000", False), ("reg.example.com", False)])
def test_loopback(reg, loopback):
    assert registry.is_loopback(reg) is loopback


def test_arch_refs():
    assert registry.arch_ref("127.0.0.1:5000/a/m:1.0", "aarch64") == "127.0.0.1:5000/a/m:1.0-arm64"
    assert registry.arch_ref("127.0.0.1:5000/a/m", "x86_64") == "127.0.0.1:5000/a/m:latest-amd64"


def test_cache_flags_per_engine():
    req = BuildRequest(context=".", target="mindie", tag="t", cache_from=("r/c:1", "r/c:2"), cache_to="r/c:3")
    kit = DockerBuildKit().build_command(req)
    assert kit.count("--cache-from") == 2 and "BUILDKIT_INLINE_CACHE=1" in kit and "--cache-to" not in kit
    pod = Podman().build_command(req)
    assert pod[pod.index("--cache-to") + 1] == "r/c:3" and "BUILDKIT_INLINE_CACHE=1" not in pod
    plain = DockerBuildKit().build_command(BuildRequest(context=".", target="mindie", tag="t"))
    assert "--cache-from" not in plain and "BUILDKIT_INLINE_CACHE=1" not in plain


FAKE_CLIENT = """#!/bin/sh
echo "$DOCKER_CLI_EXPERIMENTAL $*" >> "$0.calls"
case "$1 $2" in
  "push "*) if [ -e "$0.http" ]; then echo "http: server gave HTTP response to HTTPS client" >&2; exit 1; fi
            if [ -e "$0.refuse" ]; then echo "unauthorized: authentication required" >&2; exit 1; fi
            echo "1: digest: sha256:%s size: 527" ;;
  "manifest push") echo "sha256:%s" ;;
esac
exit 0
""" % ("a" * 64, "b" * 64)


@pytest.fixture
def client(tmp_path):
    path = tmp_path / "docker"
    path.write_text(FAKE_CLIENT)
    path.chmod(0o755)
    return path


def test_push_and_manifest_are_the_engines_methods_through_its_client(client):
    engine = DockerBuildKit(str(client))
    assert engine.push("127.0.0.1:5000/m:1-amd64") == "sha256:" + "a" * 64
    digest = engine.publish_manifest("127.0.0.1:5000/m:1", ["r/m:1-amd64", "r/m:1-arm64"], insecure=True)
    assert digest == "sha256:" + "b" * 64
    calls = (client.parent / "docker.calls").read_text().splitlines()
    assert "enabled manifest create --insecure 127.0.0.1:5000/m:1 r/m:1-amd64 r/m:1-arm64" in calls
    assert "enabled manifest push --purge --insecure 127.0.0.1:5000/m:1" in calls


def test_a_refused_push_names_the_registry_and_the_login(client):
    (client.parent / "docker.refuse").write_text("")
    with pytest.raises(EngineError, match="the registry 127.0.0.1:5000 refused") as err:
        DockerBuildKit(str(client)).push("127.0.0.1:5000/m:1")
    assert err.value.fix == f"`{client} login 127.0.0.1:5000`, then build again"


class PushingEngine(FakeEngine):
    cache_export = True

    def __init__(self, client):
        super().__init__(bridge="127.0.0.1")
        self.binary = str(client)

    def inspect(self, image):
        return {"Id": "sha256:0", "Size": 1, "Architecture": "amd64"}


def test_push_and_cache_to_land_in_the_report(workdir, client):
    engine = PushingEngine(client)
    settings = settings_for(workdir, Options(target="cann", platform="x86_64"), engine)
    report = build_and_publish([settings], BuildOptions(tag="127.0.0.1:5000/m:1", port=0, cache_to="127.0.0.1:5000/c:1"),
                               Publish(push=True), Quiet())
    assert [(p["ref"], p["platform"]) for p in report["pushed"]] == [("127.0.0.1:5000/m:1", "linux/amd64"),
                                                                    ("127.0.0.1:5000/c:1", "cache")]
    assert engine.requests[-1].cache_to == "127.0.0.1:5000/c:1"
    calls = (client.parent / "docker.calls").read_text()
    assert "tag -- 127.0.0.1:5000/m:1 127.0.0.1:5000/c:1" in calls


def test_check_takes_both_arches_and_selects_each_arch_files(tmp_path):
    import json

    from clirun import cli
    from ascend_build.demo import standins

    root = tmp_path / "w"
    scaffold(root, demo=True, arch="aarch64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    one = cli("check", "-C", root, "--platform", "linux/amd64,linux/arm64", "--json")
    assert one.returncode == 1, "no x86_64 packages yet"
    standins.generate(root / "packages", cann="8.5.0", arch="x86_64", fill=4096)
    both = cli("check", "-C", root, "--platform", "linux/amd64,linux/arm64", "--json")
    assert both.returncode == 0, both.stdout + both.stderr
    results = json.loads(both.stdout)
    assert [r["arch"] for r in results] == ["x86_64", "aarch64"]
    for result in results:
        files = [f for stage in result["stages"].values() for f in stage if f.startswith("packages/")]
        assert len(files) == 6 and all(result["arch"] in f for f in files), files


FAKE_PODMAN = """#!/bin/sh
echo "$*" >> "$0.calls"
for arg in "$@"; do
  case "$prev" in --digestfile) echo "sha256:%s" > "$arg" ;; esac
  prev="$arg"
done
exit 0
""" % ("c" * 64)


def test_podman_pushes_and_publishes_with_its_own_commands(tmp_path):
    path = tmp_path / "podman"
    path.write_text(FAKE_PODMAN)
    path.chmod(0o755)
    engine = Podman(str(path))
    assert engine.push("127.0.0.1:5000/m:1-arm64", insecure=True) == "sha256:" + "c" * 64
    images = ["127.0.0.1:5000/m:1-amd64", "127.0.0.1:5000/m:1-arm64"]
    assert engine.publish_manifest("127.0.0.1:5000/m:1", images, insecure=True) == "sha256:" + "c" * 64
    calls = [c.split() for c in (tmp_path / "podman.calls").read_text().splitlines()]
    assert calls[0][:1] == ["push"] and "--tls-verify=false" in calls[0]
    assert ["manifest", "create", "127.0.0.1:5000/m:1"] in calls
    assert ["manifest", "add", "--tls-verify=false", "127.0.0.1:5000/m:1", "docker://127.0.0.1:5000/m:1-arm64"] in calls
    assert calls[-1][:3] == ["manifest", "push", "--all"] and calls[-1][-1] == "docker://127.0.0.1:5000/m:1"


def test_a_plain_http_registry_points_at_insecure_registry(client):
    (client.parent / "docker.http").write_text("")
    with pytest.raises(EngineError, match="speaks plain HTTP") as err:
        DockerBuildKit(str(client)).push("127.0.0.1:5000/m:1")
    assert "--insecure-registry" in err.value.fix


def test_the_classic_builder_pulls_its_cache_images_first(workdir, client):
    class Classic(PushingEngine):
        name = "docker"
        pulls_cache_from = True

        def pull(self, image, platform=None):
            self.pulled.append(image)
            return subprocess.CompletedProcess(["pull", image], 0, "", "")

    engine = Classic(client)
    engine.pulled = []
    settings = settings_for(workdir, Options(target="cann", platform="x86_64"), engine)
    build_and_publish([settings], BuildOptions(tag="m:1", port=0, cache_from=("127.0.0.1:5000/c:1",)), Publish(), Quiet())
    assert engine.pulled == ["127.0.0.1:5000/c:1"] and engine.requests[-1].cache_from == ("127.0.0.1:5000/c:1",)


def test_bake_stops_with_the_fix_when_a_matrix_arch_has_no_qemu(tmp_path, no_qemu):
    import os

    from clirun import cli

    root = tmp_path / "w"
    scaffold(root, demo=True, arch="aarch64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    with (root / "ascend-build.yaml").open("a") as config:
        config.write("\nmatrix:\n  arch: [aarch64]\n")
    env = {**os.environ, "ASCEND_BUILD_BINFMT": str(no_qemu)}
    result = cli("bake", "-C", root, "-o", tmp_path / "bake.json", env=env)
    if host_arch() != "aarch64":
        assert result.returncode == 1 and "needs QEMU" in result.stderr and "qemu-user-static" in result.stderr
        assert not (tmp_path / "bake.json").exists()
    (no_qemu / "qemu-aarch64").write_text("enabled\n")
    assert cli("bake", "-C", root, "-o", tmp_path / "bake.json", env=env).returncode == 0
