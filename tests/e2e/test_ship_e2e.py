"""Ship: cross-arch builds under QEMU, one tag for two arches in a real registry, pushes with the
engine's own login, a layer cache shared through the registry. Tags carry the test's tmp name;
each test removes only the images it made."""
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from clirun import cli
from daemon import fresh_daemon
from ascend_build.demo import standins
from ascend_build.platforms import host_arch
from registry import registry

pytestmark = pytest.mark.e2e
FILL = 64 * 1024
ARM64_BASE = "localhost/ascend-build-base:bookworm-arm64"
OTHER = "aarch64" if host_arch() == "x86_64" else "x86_64"
PLATFORM = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}
IMPORT = "import torch_npu; print('torch_npu', torch_npu.__version__)"


@pytest.fixture(scope="module")
def arm64_base(docker_bin, base_image):
    if subprocess.run([docker_bin, "image", "inspect", ARM64_BASE], capture_output=True).returncode != 0:
        pytest.skip(f"{ARM64_BASE} missing: scripts/make-base-image.sh --arch arm64")
    return {"x86_64": base_image, "aarch64": ARM64_BASE}


def workdir_for(tmp_path: Path, arches, bases, fresh: bool = False) -> Path:
    """Stand-ins of every arch in one folder; `base_images` names each arch's base. `fresh`: content
    no earlier build had, so every install stage runs."""
    workdir = tmp_path / "w"
    assert cli("init", "--demo", workdir, "--arch", arches[0], "--filler", FILL).returncode == 0
    seed = f"{unique(tmp_path)}-{time.time()}" if fresh else ""
    for arch in arches[1 if not fresh else 0:]:
        standins.generate(workdir / "packages", cann="8.5.0", arch=arch, fill=FILL, seed=seed)
    with (workdir / "ascend-build.yaml").open("a") as config:
        config.write("\nbase_images:\n" + "".join(f"  {a}: {bases[a]}\n" for a in bases))
    return workdir


def build(workdir: Path, docker_bin: str, *args, env=None):
    """`build --engine buildkit`: the tool finds a client that can use BuildKit itself (a newer
    docker without buildx first on PATH is passed over), as a user's build does."""
    report = workdir.parent / "report.json"
    result = cli("build", "-C", workdir, "--engine", "buildkit", "--port", "0", "--report", report, *args, env=env)
    return result, (json.loads(report.read_text()) if result.returncode == 0 else None)


def said(result) -> str:
    """What the command printed (messages and errors go to stderr)."""
    return result.stdout + result.stderr


def docker(docker_bin: str, *args, env=None, **kw):
    return subprocess.run([docker_bin, *args], capture_output=True, text=True, timeout=600, env=env, **kw)


def remove(docker_bin: str, *images):
    docker(docker_bin, "image", "rm", "--force", *images)


def unique(tmp_path: Path) -> str:
    return "p14-" + "".join(c for c in tmp_path.name.lower() if c.isalnum())


def test_other_arch_build_passes_verify_under_qemu(tmp_path, docker_bin, arm64_base):
    workdir = workdir_for(tmp_path, [OTHER], arm64_base, fresh=True)
    tag = f"ascend-build-test/{unique(tmp_path)}:{OTHER}"
    try:
        result, report = build(workdir, docker_bin, "--platform", PLATFORM[OTHER], "-t", tag, "--verify")
        assert result.returncode == 0, said(result)[-3000:]
        assert report["base_image"] == arm64_base[OTHER]
        assert [s["status"] for s in report["stages"]][1:] == ["built"] * 3, "the install stages ran under QEMU"
        image = json.loads(docker(docker_bin, "image", "inspect", tag).stdout)[0]
        assert image["Architecture"] == PLATFORM[OTHER].split("/")[1]
        assert "FAILED" not in said(result)
    finally:
        remove(docker_bin, tag)


def test_missing_qemu_is_one_message_with_the_fix(tmp_path, docker_bin, arm64_base):
    workdir = workdir_for(tmp_path, [OTHER], arm64_base)
    (tmp_path / "binfmt").mkdir()
    (tmp_path / "binfmt" / "status").write_text("enabled\n")
    result, _ = build(workdir, docker_bin, "--platform", PLATFORM[OTHER],
                      env={**os.environ, "ASCEND_BUILD_BINFMT": str(tmp_path / "binfmt")})
    assert result.returncode == 1
    assert "needs QEMU" in said(result) and "qemu-user-static" in said(result)
    assert "Traceback" not in said(result) and "exec format error" not in said(result)


def test_base_image_of_another_arch_is_one_error_before_the_build(tmp_path, docker_bin, arm64_base):
    workdir = workdir_for(tmp_path, [OTHER], arm64_base)
    result, _ = build(workdir, docker_bin, "--platform", PLATFORM[OTHER], "--base-image", arm64_base[host_arch()])
    assert result.returncode == 1 and "Traceback" not in said(result)
    assert f"is here for {host_arch()} only, and its {PLATFORM[OTHER]} image could not be pulled" in said(result)
    assert "full log" not in said(result), "refused before the engine ran"
    result, _ = build(workdir, docker_bin, "--platform", PLATFORM[OTHER], "--base-image", arm64_base[host_arch()],
                      "--pull", "never")
    assert result.returncode == 1 and f"is for {host_arch()}, but the build is for {OTHER}" in said(result)


def manifest_list(reg: str, name: str, tag: str) -> dict:
    request = urllib.request.Request(f"http://{reg}/v2/{name}/manifests/{tag}", headers={
        "Accept": "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_two_arches_publish_one_tag_and_each_image_imports_torch_npu(tmp_path, docker_bin, arm64_base):
    workdir = workdir_for(tmp_path, ["x86_64", "aarch64"], arm64_base, fresh=True)
    with registry(tmp_path / "registry") as reg:
        name = f"{unique(tmp_path)}/mindie"
        tag = f"{reg}/{name}:1.0"
        try:
            result, report = build(workdir, docker_bin, "--platform", "linux/amd64,linux/arm64", "-t", tag,
                                   "--insecure-registry")
            assert result.returncode == 0, said(result)[-3000:]
            assert [[s["status"] for s in r["stages"]][1:] for r in report["platforms"]] == [["built"] * 3] * 2
            listed = manifest_list(reg, name, "1.0")
            assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]
            pushed = {p["platform"]: p["digest"] for p in report["pushed"]}
            assert set(pushed) == {"linux/amd64", "linux/arm64", "manifest list"}
            assert all(d.startswith("sha256:") for d in pushed.values())
            assert {m["digest"] for m in listed["manifests"]} == {pushed["linux/amd64"], pushed["linux/arm64"]}
            for platform in ("linux/amd64", "linux/arm64"):
                assert docker(docker_bin, "pull", "--platform", platform, tag).returncode == 0
                ran = docker(docker_bin, "run", "--rm", "--network", "none", "--platform", platform, tag, "python3", "-c", IMPORT)
                assert ran.returncode == 0 and "torch_npu 2.6.0.post5" in ran.stdout, (platform, ran.stderr)
                arch = json.loads(docker(docker_bin, "image", "inspect", tag).stdout)[0]["Architecture"]
                assert arch == platform.split("/")[1]
        finally:
            remove(docker_bin, tag, f"{reg}/{name}:1.0-amd64", f"{reg}/{name}:1.0-arm64")


def test_multi_arch_without_a_registry_in_the_tag_is_a_clear_error(tmp_path, docker_bin, arm64_base):
    workdir = workdir_for(tmp_path, ["x86_64", "aarch64"], arm64_base)
    result, _ = build(workdir, docker_bin, "--platform", "linux/amd64,linux/arm64", "-t", "mindie:1.0")
    assert result.returncode == 1 and "names none" in said(result) and "REGISTRY/NAME:TAG" in said(result)


def test_push_to_the_auth_registry_needs_the_engines_login(tmp_path, docker_bin, arm64_base):
    password = "pw-" + unique(tmp_path)
    workdir = workdir_for(tmp_path, [host_arch()], arm64_base)
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    with registry(tmp_path / "registry", credentials=("tester", password)) as reg:
        tag = f"{reg}/{unique(tmp_path)}/base:1"
        try:
            refused, _ = build(workdir, docker_bin, "--target", "base", "-t", tag, "--push", env=env)
            assert refused.returncode == 1
            assert f"the registry {reg} refused" in said(refused) and f"login {reg}" in said(refused)
            login = docker(docker_bin, "login", "-u", "tester", "--password-stdin", reg, env=env, input=password)
            assert login.returncode == 0, login.stderr
            result, report = build(workdir, docker_bin, "--target", "base", "-t", tag, "--push", env=env)
            assert result.returncode == 0, said(result)[-3000:]
            assert report["pushed"][0]["digest"].startswith("sha256:")
            seen = said(result) + Path(report["log"]).read_text() + (tmp_path / "report.json").read_text()
            assert password not in seen
        finally:
            remove(docker_bin, tag)


def test_insecure_registry_is_refused_for_a_remote_registry(tmp_path, docker_bin, arm64_base):
    workdir = workdir_for(tmp_path, [host_arch()], arm64_base)
    result, _ = build(workdir, docker_bin, "-t", "registry.example.com/x/y:1", "--push", "--insecure-registry")
    assert result.returncode == 1 and "--allow-insecure-remote" in said(result)


def test_a_fresh_daemon_rebuilds_nothing_with_the_registry_cache(tmp_path, docker_bin, base_image, arm64_base):
    """Build and push the inline cache here; a new daemon (no images, no build cache, only the base
    image loaded) builds the same image with --cache-from: every stage cached, no stage script runs."""
    workdir = workdir_for(tmp_path, [host_arch()], arm64_base, fresh=True)
    net = ["--network", "host"]                        # the fresh daemon has no bridge; the network is a cache key
    with registry(tmp_path / "registry") as reg:
        tag, cache = f"{reg}/{unique(tmp_path)}/mindie:1", f"{reg}/{unique(tmp_path)}/cache:mindie"
        try:
            first, report = build(workdir, docker_bin, *net, "-t", tag, "--cache-to", cache)
            assert first.returncode == 0, said(first)[-3000:]
            assert [p["platform"] for p in report["pushed"]] == ["cache"]
            assert [s["status"] for s in report["stages"]][1:] == ["built"] * 3
            assert "ascend-build[cann]" in Path(report["log"]).read_text(), "the first build runs the stage scripts"
            with fresh_daemon(tmp_path / "fresh", docker_bin) as host:
                env = {**os.environ, "DOCKER_HOST": host}
                loaded = subprocess.run(f"{docker_bin} save {base_image} | {docker_bin} -H {host} load", shell=True,
                                        capture_output=True, text=True, timeout=600)
                assert loaded.returncode == 0, loaded.stderr
                started = time.monotonic()
                again, report = build(workdir, docker_bin, *net, "-t", tag, "--cache-from", cache, env=env)
                seconds = time.monotonic() - started
                assert again.returncode == 0, said(again)[-3000:]
                log = Path(report["log"]).read_text()
                assert f"importing cache manifest from {cache}" in log
                assert [s["status"] for s in report["stages"]] == ["cached"] * 4, report["stages"]
                assert "ascend-build[" not in log, "no stage script ran"
                print(f"fresh-daemon rebuild from the registry cache: {seconds:.1f} s")
        finally:
            remove(docker_bin, tag, cache)


@pytest.fixture(scope="module")
def podman_bases(arm64_base):
    if not shutil.which("podman"):
        pytest.skip("podman missing: apt-get install podman (.ci/run installs it)")
    for image in arm64_base.values():
        if subprocess.run(["podman", "image", "exists", image]).returncode != 0:
            subprocess.run(f"docker save {image} | podman load", shell=True, check=True, capture_output=True)
    return arm64_base


def test_podman_publishes_one_tag_for_two_arches(tmp_path, podman_bases):
    workdir = workdir_for(tmp_path, ["x86_64", "aarch64"], podman_bases)
    report = tmp_path / "report.json"
    with registry(tmp_path / "registry") as reg:
        name = f"{unique(tmp_path)}/base"
        tag = f"{reg}/{name}:1"
        try:
            result = cli("build", "-C", workdir, "--engine", "podman", "--target", "base", "--platform",
                         "linux/amd64,linux/arm64", "-t", tag, "--insecure-registry", "--report", report)
            assert result.returncode == 0, said(result)[-3000:]
            pushed = {p["platform"]: p["digest"] for p in json.loads(report.read_text())["pushed"]}
            listed = manifest_list(reg, name, "1")
            assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]
            assert {m["digest"] for m in listed["manifests"]} == {pushed["linux/amd64"], pushed["linux/arm64"]}
        finally:
            subprocess.run(["podman", "rmi", "-f", tag, f"{tag}-amd64", f"{tag}-arm64"], capture_output=True)


def push_list(docker_bin: str, ref: str, images) -> None:
    """A manifest list `ref` in the test registry with an entry per local image of `images`."""
    parts = []
    for image in images:
        arch = json.loads(docker(docker_bin, "image", "inspect", image).stdout)[0]["Architecture"]
        part = f"{ref}-{arch}"
        assert docker(docker_bin, "tag", image, part).returncode == 0
        pushed = docker(docker_bin, "push", part)
        assert pushed.returncode == 0, pushed.stderr
        parts.append(part)
    made = docker(docker_bin, "manifest", "create", "--insecure", ref, *parts)
    assert made.returncode == 0, made.stderr
    sent = docker(docker_bin, "manifest", "push", "--purge", "--insecure", ref)
    assert sent.returncode == 0, sent.stderr
    remove(docker_bin, *parts)                # the local store holds none of it


def test_a_manifest_list_base_builds_and_pushes_both_arches(tmp_path, docker_bin, arm64_base):
    """`ubuntu:22.04` and the CANN images are manifest lists: the store holds one arch per name,
    the registry both. Each arch's build pulls its own entry; an arch the list lacks is one error."""
    workdir = workdir_for(tmp_path, ["x86_64", "aarch64"], arm64_base)
    with registry(tmp_path / "registry") as reg:
        base, only, out = (f"{reg}/{unique(tmp_path)}/{n}" for n in ("base:multi", "base:one", "out"))
        try:
            push_list(docker_bin, base, [arm64_base["x86_64"], arm64_base["aarch64"]])
            push_list(docker_bin, only, [arm64_base[host_arch()]])
            result, report = build(workdir, docker_bin, "--platform", "linux/amd64,linux/arm64", "--target", "cann",
                                   "--base-image", base, "-t", f"{out}:1.0", "--insecure-registry")
            assert result.returncode == 0, said(result)[-3000:]
            assert "is for" not in said(result)
            listed = manifest_list(reg, out.split("/", 1)[1], "1.0")
            assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]
            refused, _ = build(workdir, docker_bin, "--platform", PLATFORM[OTHER], "--target", "cann",
                               "--base-image", only, "-t", f"{out}:one")
            assert refused.returncode == 1 and "Traceback" not in said(refused)
            assert f"its {PLATFORM[OTHER]} image could not be pulled" in said(refused) or \
                f"{only} is not present and could not be pulled" in said(refused), said(refused)[-2000:]
            assert "no matching manifest" in said(refused) and "full log" not in said(refused)
        finally:
            remove(docker_bin, base, only, f"{out}:1.0", f"{out}:1.0-amd64", f"{out}:1.0-arm64", f"{out}:one")
