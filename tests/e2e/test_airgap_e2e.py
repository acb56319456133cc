"""Air-gapped transfer on real engines: `save` from the test dockerd, `load` into a second, fresh
dockerd and `load --push` into Debian's docker-registry keep image ids and digests; a flipped byte
is refused before anything is loaded or pushed; a two-arch tag in a registry travels whole."""
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from clirun import cli
from daemon import fresh_daemon
from registry import registry
from test_ship_e2e import manifest_list, push_list
from ascend_build.platforms import host_arch

pytestmark = pytest.mark.e2e
ARM64_BASE = "localhost/ascend-build-base:bookworm-arm64"
HERE = {"x86_64": "amd64", "aarch64": "arm64"}[host_arch()]
ACCEPT = ("application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json")


def said(result) -> str:
    return result.stdout + result.stderr


def docker(docker_bin, *args, host=None, **kw):
    return subprocess.run([docker_bin, *(["-H", host] if host else []), *args], capture_output=True, text=True, timeout=600, **kw)


def image_id(docker_bin, ref, host=None) -> str:
    found = docker(docker_bin, "image", "inspect", "--format", "{{.Id}} {{.Architecture}}", ref, host=host)
    assert found.returncode == 0, found.stderr
    return found.stdout.split()[0]


def arch_of(docker_bin, ref, host=None) -> str:
    return docker(docker_bin, "image", "inspect", "--format", "{{.Architecture}}", ref, host=host).stdout.strip()


def manifest(reg: str, name: str, tag: str):
    request = urllib.request.Request(f"http://{reg}/v2/{name}/manifests/{tag}", headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Docker-Content-Digest"], json.loads(answer.read())


def catalog(reg: str) -> list:
    with urllib.request.urlopen(f"http://{reg}/v2/_catalog", timeout=10) as answer:
        return json.loads(answer.read())["repositories"]


def flip_in_largest_blob(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        blob = max((m for m in tar.getmembers() if m.name.startswith("blobs/")), key=lambda m: m.size)
    with open(archive, "r+b") as handle:
        handle.seek(blob.offset_data + blob.size // 2)
        byte = handle.read(1)
        handle.seek(blob.offset_data + blob.size // 2)
        handle.write(bytes([byte[0] ^ 0x20]))
    return blob.name.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, docker_bin):
    """A second dockerd with an empty store, as on the air-gapped host."""
    with fresh_daemon(tmp_path_factory.mktemp("airgap") / "fresh", docker_bin) as host:
        yield host


@pytest.fixture(scope="module")
def built(tmp_path_factory, docker_bin, base_image):
    """A small image built by ascend-build (target cann), saved once."""
    root = tmp_path_factory.mktemp("airgap-built")
    workdir = root / "w"
    assert cli("init", "--demo", workdir, "--filler", "64KiB").returncode == 0
    tag = f"ascend-build-test/airgap-{root.name.lower().replace('_', '-')}:cann"
    result = cli("build", "-C", workdir, "--engine", "buildkit", "--target", "cann", "--port", "0", "-t", tag)
    assert result.returncode == 0, said(result)[-3000:]
    archive = root / "cann.tar"
    started = time.monotonic()
    saved = cli("save", tag, "-o", archive, "--json")
    seconds = time.monotonic() - started
    assert saved.returncode == 0, said(saved)[-3000:]
    with subprocess.Popen([docker_bin, "save", tag], stdout=subprocess.PIPE) as proc:
        docker_save = sum(len(chunk) for chunk in iter(lambda: proc.stdout.read(1 << 20), b""))
    print(f"\nsave: {archive.stat().st_size} bytes in {seconds:.1f} s; docker save: {docker_save} bytes")
    yield tag, archive, json.loads(saved.stdout)
    docker(docker_bin, "image", "rm", "--force", tag)


def test_save_load_into_a_fresh_daemon_keeps_the_image_id_and_verify_passes(built, fresh, docker_bin):
    tag, archive, saved = built
    original = image_id(docker_bin, tag)
    assert saved["images"][0]["image_id"] == original
    with tarfile.open(archive) as tar:
        assert tar.getnames()[2] == "SHA256SUMS" and "index.json" in tar.getnames() and "manifest.json" in tar.getnames()
    env = {**os.environ, "DOCKER_HOST": fresh}
    assert docker(docker_bin, "image", "inspect", tag, host=fresh).returncode != 0, "the fresh daemon starts empty"
    started = time.monotonic()
    loaded = cli("load", archive, "--engine", "docker", "--json", env=env)
    print(f"\nload into the fresh daemon: {time.monotonic() - started:.1f} s")
    assert loaded.returncode == 0, said(loaded)[-3000:]
    assert json.loads(loaded.stdout)["loaded"] == [{"ref": tag, "platform": f"linux/{HERE}", "image_id": original}]
    assert image_id(docker_bin, tag, host=fresh) == original
    verified = cli("verify", tag, "--engine", "docker", env=env)
    assert verified.returncode == 0 and "FAILED" not in said(verified), said(verified)[-3000:]


def test_load_push_gives_the_registry_the_same_image(built, tmp_path, docker_bin):
    tag, archive, saved = built
    with registry(tmp_path / "registry") as reg:
        target = f"{reg}/site/cann:1"
        pushed = cli("load", archive, "--push", target, "--insecure-registry", "--json")
        assert pushed.returncode == 0, said(pushed)[-3000:]
        digest, stored = manifest(reg, "site/cann", "1")
        assert digest == saved["images"][0]["digest"] == json.loads(pushed.stdout)["pushed"][0]["digest"]
        assert stored["config"]["digest"] == image_id(docker_bin, tag)


def test_a_flipped_byte_is_refused_before_anything_is_loaded(built, fresh, tmp_path, docker_bin):
    _, archive, _ = built
    damaged = tmp_path / "damaged.tar"
    shutil.copyfile(archive, damaged)
    blob = flip_in_largest_blob(damaged)
    temp = tmp_path / "temp"
    temp.mkdir()
    before = docker(docker_bin, "images", "-qa", "--no-trunc", host=fresh).stdout
    env = {**os.environ, "DOCKER_HOST": fresh}
    refused = cli("load", damaged, "--engine", "docker", "--temp-dir", temp, env=env)
    assert refused.returncode == 1 and blob in said(refused) and "damaged" in said(refused), said(refused)[-2000:]
    assert "Traceback" not in said(refused) and said(refused).count("error:") == 1
    assert docker(docker_bin, "images", "-qa", "--no-trunc", host=fresh).stdout == before, "nothing loaded"
    assert list(temp.iterdir()) == [], "no temporary files left"
    with registry(tmp_path / "registry") as reg:
        refused = cli("load", damaged, "--push", f"{reg}/site/cann:1", "--insecure-registry", "--temp-dir", temp)
        assert refused.returncode == 1 and blob in said(refused)
        assert catalog(reg) == [], "nothing pushed"
    assert list(temp.iterdir()) == []


def test_a_two_arch_tag_saves_and_loads_both_arches(tmp_path, fresh, docker_bin, base_image):
    if docker(docker_bin, "image", "inspect", ARM64_BASE).returncode != 0:
        pytest.skip(f"{ARM64_BASE} missing: scripts/make-base-image.sh --arch arm64")
    bases = {"amd64": base_image, "arm64": ARM64_BASE} if HERE == "amd64" else {"arm64": base_image, "amd64": ARM64_BASE}
    ids = {arch: image_id(docker_bin, image) for arch, image in bases.items()}
    with registry(tmp_path / "registry") as reg:
        ref = f"{reg}/build/base:multi"
        push_list(docker_bin, ref, [bases["amd64"], bases["arm64"]])
        list_digest, _ = manifest(reg, "build/base", "multi")
        archive = tmp_path / "multi.tar"
        saved = cli("save", ref, "-o", archive, "--insecure-registry", "--json")
        assert saved.returncode == 0, said(saved)[-3000:]
        image = json.loads(saved.stdout)["images"][0]
        assert image["platforms"] == ["linux/amd64", "linux/arm64"] and image["digest"] == list_digest
        pushed = cli("load", archive, "--push", f"{reg}/site/base:2", "--insecure-registry")
        assert pushed.returncode == 0, said(pushed)[-3000:]
        listed = manifest_list(reg, "site/base", "2")
        assert sorted(m["platform"]["architecture"] for m in listed["manifests"]) == ["amd64", "arm64"]
        assert manifest(reg, "site/base", "2")[0] == list_digest
    loaded = cli("load", archive, "--engine", "docker", env={**os.environ, "DOCKER_HOST": fresh})
    assert loaded.returncode == 0, said(loaded)[-3000:]
    for arch in ("amd64", "arm64"):
        assert image_id(docker_bin, f"{ref}-{arch}", host=fresh) == ids[arch]
        assert arch_of(docker_bin, f"{ref}-{arch}", host=fresh) == arch
    assert image_id(docker_bin, ref, host=fresh) == ids[HERE], "this host's arch under the tag itself"
