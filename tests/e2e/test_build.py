"""`ascend-build build` end to end: real engines, stand-in packages, real images inspected."""
import hashlib
import json
import os
import re
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from clirun import CLI, cli
from ascend_build.demo import standins

pytestmark = pytest.mark.e2e
FILL = 256 * 1024
IMPORTS = "import torch_npu, mindie_llm, atb_llm; print('imports-ok', torch_npu.__version__)"


def snapshot(root: Path) -> dict:
    """Every file of the working directory except our hidden state folder: path -> (bytes, mtime)."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and ".ascend-build" not in p.parts}


def make_workdir(root: Path, name: str, cann: str = "8.5.0", seed: str = "") -> Path:
    workdir = root / name
    result = cli("init", "--demo", str(workdir), "--cann", cann, "--filler", f"{FILL}")
    assert result.returncode == 0, result.stderr
    if seed:  # different content under the same names: a fresh cache
        standins.generate(workdir / "packages", cann=cann, arch=standins_arch(), fill=FILL, seed=seed)
    return workdir


def standins_arch() -> str:
    import platform
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower(), platform.machine())


def build(workdir: Path, *args):
    report = workdir.parent / f"{workdir.name}-report.json"
    result = cli("build", "-C", str(workdir), "--report", str(report), *args)  # port 3000: the URL is a cache key
    data = json.loads(report.read_text()) if result.returncode == 0 else None
    return result, data


def engine_bin(engine: str) -> str:
    return "podman" if engine == "podman" else "docker"


def run_in(engine: str, image: str, *cmd, user=None):
    """Run in a container. Podman's images are run by docker: in this sandbox `podman run` cannot
    set the rlimits it always sets (podman build's RUN steps can), so they are copied over."""
    if engine == "podman":
        subprocess.run(f"podman save --format docker-archive {image} | docker load", shell=True, check=True,
                       capture_output=True, timeout=300)
        image = image if image.startswith("localhost/") else f"localhost/{image}"
    args = ["docker", "run", "--rm", "--network", "none"]
    if user:
        args += ["--user", user]
    return subprocess.run([*args, image, *cmd], capture_output=True, text=True, timeout=120)


def layer_blobs(engine: str, image: str, dest: Path):
    archive = dest / "image.tar"
    subprocess.run([engine_bin(engine), "save", "-o", str(archive), image], check=True, timeout=300)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and (member.name.endswith("layer.tar") or "/blobs/" in member.name or member.name.endswith(".tar")):
                yield member.name, tar.extractfile(member).read()
    archive.unlink()


def needles(path: Path):
    """Bytes only the package file holds (its start and its end), never the installed files."""
    data = path.read_bytes()
    return [data[:512], data[-64:]]


STAGES = ["base", "cann", "pta", "mindie"]
COMBOS = [("docker", "http"), ("buildkit", "http"), ("buildkit", "mount"), ("podman", "http"), ("podman", "mount"), ("docker", "copy")]


@pytest.fixture(scope="module")
def engines_ready(docker_bin, base_image):
    if subprocess.run(["podman", "image", "exists", base_image]).returncode != 0:
        subprocess.run(f"docker save {base_image} | podman load", shell=True, check=True, capture_output=True)
    return base_image


@pytest.mark.parametrize("engine, delivery", COMBOS)
def test_every_target_builds_and_leaves_no_installer_bytes(tmp_path, engines_ready, engine, delivery):
    workdir = make_workdir(tmp_path, "w", seed=f"{engine}-{delivery}-{time.time()}")
    before = snapshot(workdir)
    tag = f"ascend-build-test/{engine}-{delivery}:mindie"
    result, report = build(workdir, "--engine", engine, "--delivery", delivery, "-t", tag)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [s["status"] for s in report["stages"]][1:] == ["built"] * 3  # base may come from the cache
    assert report["engine"] == engine and report["delivery"] == delivery
    if delivery == "http":
        history = subprocess.run([engine_bin(engine), "history", "--no-trunc", tag], capture_output=True, text=True).stdout
        assert "ASCEND_PKG_URL=http://" not in history and "ascend-pkg-url=" not in history, \
            "BuildKit/podman get the URL as a secret, the classic builder as a proxy argument kept out of history"
        assert report["context_bytes"] < 64 * 1024, "http context holds only the Dockerfile and scripts"
        packages = {p.name for p in (workdir / "packages").iterdir() if p.suffix != ".sha256"}
        assert {s["file"] for s in report["served"]} == packages | {"requirements.txt"}
        assert all(s["complete"] for s in report["served"])
    assert snapshot(workdir) == before

    for user in (None, "HwHiAiUser"):
        ran = run_in(engine, tag, "python3", "-c", IMPORTS, user=user)
        assert ran.returncode == 0 and "imports-ok 2.6.0.post5" in ran.stdout, (user, ran.stderr)

    packages = sorted((workdir / "packages").iterdir())
    found = [(name, pkg.name) for name, blob in layer_blobs(engine, tag, tmp_path)
             for pkg in packages for needle in needles(pkg) if needle in blob]
    if delivery == "copy":
        assert found, "copy delivery is the baseline that does leave installer bytes"
    else:
        assert found == [], f"installer bytes in layers: {found}"
        installed = report["size_bytes"] - report["base_size_bytes"]
        assert installed < 3 * 7 * FILL + 40 * 1024 * 1024

    for target in ("pta", "cann", "base"):
        result, report = build(workdir, "--engine", engine, "--delivery", delivery, "--target", target,
                               "-t", f"ascend-build-test/{engine}-{delivery}:{target}")
        assert result.returncode == 0, result.stderr[-3000:]
        assert [s["name"] for s in report["stages"]] == STAGES[: STAGES.index(target) + 1]
        assert all(s["status"] == "cached" for s in report["stages"]), report["stages"]
    labels = json.loads(subprocess.run([engine_bin(engine), "image", "inspect", f"ascend-build-test/{engine}-{delivery}:pta"],
                                       capture_output=True, text=True).stdout)[0]["Config"]["Labels"]
    assert labels["io.ascend-build.target"] == "pta" and "io.ascend-build.mindie.version" not in labels
    for target in ("mindie", "pta", "cann", "base"):
        subprocess.run([engine_bin(engine), "rmi", "-f", f"ascend-build-test/{engine}-{delivery}:{target}"], capture_output=True)


def test_cache_follows_content_not_names(tmp_path, engines_ready):
    workdir = make_workdir(tmp_path, "w", seed=f"cache-{time.time()}")
    tag = "ascend-build-test/cache:mindie"
    first, _ = build(workdir, "--engine", "buildkit", "-t", tag)
    assert first.returncode == 0, first.stderr[-3000:]
    captured = (workdir / ".ascend-build" / "capture-image-id").read_text().strip()   # BuildKit's cache is not images:
    assert subprocess.run(["docker", "image", "inspect", captured], capture_output=True).returncode != 0   # not kept
    again, report = build(workdir, "--engine", "buildkit", "-t", tag)
    assert again.returncode == 0 and [s["status"] for s in report["stages"]] == ["cached"] * 4
    npu = next((workdir / "packages").glob("torch_npu-*.whl"))
    standins.make_torch_npu(workdir / "packages", "2.6.0.post5", "2.6.0", standins_arch(), "3.11", FILL, seed="changed")
    changed, report = build(workdir, "--engine", "buildkit", "-t", tag)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert npu.exists()
    assert {s["name"]: s["status"] for s in report["stages"]} == {"base": "cached", "cann": "cached", "pta": "built", "mindie": "built"}
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_corrupt_set_fails_before_the_engine_starts(tmp_path, engines_ready):
    workdir = make_workdir(tmp_path, "w")
    toolkit = next((workdir / "packages").glob("Ascend-cann-toolkit_*.run"))
    toolkit.write_bytes(toolkit.read_bytes()[:-1000])
    before = snapshot(workdir)
    result, _ = build(workdir, "-t", "ascend-build-test/corrupt:x")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert toolkit.name in result.stderr and "engine:" not in result.stderr
    assert snapshot(workdir) == before
    assert subprocess.run(["docker", "image", "inspect", "ascend-build-test/corrupt:x"], capture_output=True).returncode != 0


def test_failing_installer_names_the_stage_and_shows_its_log(tmp_path, engines_ready):
    workdir = make_workdir(tmp_path, "w", seed=f"fail-{time.time()}")
    kernels = next((workdir / "packages").glob("Ascend-cann-910b-ops_*.run")).name
    (workdir / "install-scripts" / "install_cann.sh").write_text(
        f'#!/bin/bash\nset -e\n. /opt/ascend-build/lib.sh\nab_install ops "$PKG_DIR/{kernels}" --install --quiet\n')
    before = snapshot(workdir)
    result, _ = build(workdir, "--engine", "buildkit", "-t", "ascend-build-test/fail:x")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "stage cann failed" in result.stderr
    assert "component ops" in result.stderr
    assert "no toolkit 8.5.0 found" in result.stderr, "the installer log's reason is shown"
    assert ".ascend-build/logs/build-" in result.stderr
    assert snapshot(workdir) == before


def build_containers(engine: str) -> set:
    if engine == "podman":  # buildah's working containers
        return set(subprocess.run(["podman", "ps", "-aq", "--external"], capture_output=True, text=True).stdout.split())
    return set(subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True).stdout.split())


@pytest.mark.parametrize("engine", ["docker", "buildkit", "podman"])
def test_ctrl_c_leaves_no_server_process_or_container(tmp_path, engines_ready, engine):
    workdir = make_workdir(tmp_path, "w", seed=f"int-{time.time()}")
    marker = f"sleep 600{int(time.time() * 1000) % 1000}"  # a command line only this build runs
    (workdir / "install-scripts" / "install_cann.sh").write_text(f"#!/bin/bash\nbash -c '{marker}; true' || {marker}\n")
    before = build_containers(engine)
    proc = subprocess.Popen([*CLI, "build", "-C", str(workdir), "--engine", engine, "--port", "0", "-t", "ascend-build-test/int:x"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    seen = ""
    while time.time() < deadline and "stage cann: running" not in seen:
        seen += proc.stderr.readline()
    assert "stage cann: running" in seen, seen
    port = int(re.search(r"serving \d+ files on [\d.]+:(\d+)", seen).group(1))
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert "Traceback" not in proc.stderr.read()
    time.sleep(2)
    assert build_containers(engine) <= before, "a build container was left behind"
    for pattern in (f"{workdir}/.ascend-build/context", marker):
        left = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
        assert left.strip() == "", f"a process was left behind: {pattern}"
    import socket
    with pytest.raises(OSError):
        socket.create_connection(("172.17.0.1" if engine != "podman" else "127.0.0.1", port), timeout=1).close()


def test_bake_contexts_build_with_a_shared_base(tmp_path, engines_ready):
    """What `docker buildx bake` would do with the bake file: the base target, then a variant whose
    named context `ascend-base` is that base (emulated with a tag: no buildx on the test hosts).
    After a `build` of the same inputs (classic builder, http) the variant carries its captured ENV."""
    workdir = make_workdir(tmp_path, "w", seed=f"bake-{time.time()}")
    with (workdir / "ascend-build.yaml").open("a") as config:
        config.write("matrix:\n  python: ['3.11']\n")
    out = tmp_path / "bake.json"
    before = cli("bake", "-C", str(workdir), "-o", str(out))
    assert before.returncode == 0 and "no build has captured the ENV of stage cann" in before.stderr + before.stdout
    result, _ = build(workdir, "--engine", "docker", "-t", "ascend-build-test/bake:local")
    assert result.returncode == 0, result.stderr[-3000:]
    after = cli("bake", "-C", str(workdir), "-o", str(out), "--force")
    assert after.returncode == 0 and "warning" not in after.stderr + after.stdout
    data = json.loads(out.read_text())
    base = data["target"]["base-x86-64"]
    variant = data["target"][data["group"]["default"]["targets"][0]]
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    subprocess.run(["/usr/bin/docker", "build", "-q", "-t", "ascend-base", "--target", "base", "--build-arg",
                    f"BASE_IMAGE={base['args']['BASE_IMAGE']}", base["context"]], env=env, check=True, capture_output=True)
    built = subprocess.run(["/usr/bin/docker", "build", "-q", "-t", "ascend-build-test/bake:x", "--target", variant["target"],
                            variant["context"]], env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    ran = run_in("docker", "ascend-build-test/bake:x", "python3", "-c", IMPORTS)
    assert "imports-ok" in ran.stdout, ran.stderr
    bare = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python3",
                           "ascend-build-test/bake:x", "-c", IMPORTS], capture_output=True, text=True)   # no set_env.sh sourced
    assert "imports-ok" in bare.stdout, bare.stderr
    subprocess.run(["docker", "rmi", "-f", "ascend-build-test/bake:x", "ascend-build-test/bake:local", "ascend-base"],
                   capture_output=True)


def test_user_errors_are_one_message_and_leave_nothing_behind(tmp_path, engines_ready):
    workdir = make_workdir(tmp_path, "w")
    before = snapshot(workdir)
    containers = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True).stdout.split()

    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' >&2\nexit 1\n")
    fake.chmod(0o755)
    no_daemon, _ = build(workdir, "--engine", "docker", "--docker-bin", str(fake))
    assert no_daemon.returncode == 1 and "no container engine answers" in no_daemon.stderr
    assert "Cannot connect to the Docker daemon" in no_daemon.stderr and "dockerd" in no_daemon.stderr

    missing, _ = build(workdir, "--engine", "docker", "--base-image", "localhost/nowhere:1", "--pull", "never")
    assert missing.returncode == 1 and "base image localhost/nowhere:1 is not present" in missing.stderr
    assert "docker load" in missing.stderr and "docker import" in missing.stderr

    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy, _ = build(workdir, "--engine", "docker", "--network", "host", "--port", str(port))
    assert busy.returncode == 1 and f"127.0.0.1:{port}" in busy.stderr and "--port 0" in busy.stderr

    bad_target, _ = build(workdir, "--target", "nope")
    assert bad_target.returncode == 1 and "unknown stage 'nope'" in bad_target.stderr and "pick one of" in bad_target.stderr

    mount_classic, _ = build(workdir, "--engine", "docker", "--delivery", "mount")
    assert mount_classic.returncode == 1 and "mount delivery needs BuildKit or podman" in mount_classic.stderr

    for result in (no_daemon, missing, busy, bad_target, mount_classic):
        assert "Traceback" not in result.stderr
    assert snapshot(workdir) == before
    assert set(subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True).stdout.split()) <= set(containers)


def test_requirements_from_the_folder_for_pta_and_atb_models(tmp_path, engines_ready):
    """8.0.RC2 family (atb-models tarball): requirements.txt and the tarball's own requirements are
    installed from wheels in the working directory (no index)."""
    workdir = make_workdir(tmp_path, "w", cann="8.0.RC2", seed=f"req-{time.time()}")
    packages = workdir / "packages"
    for name in ("ascend_demo_extra", "ascend_demo_atbdep"):
        standins.make_wheel(packages, name, "1.0", ("py3", "none", ["any"]), {f"{name}/__init__.py": b"VALUE = 1\n"})
    (workdir / "requirements.txt").write_text("ascend-demo-extra==1.0\n")
    old = next(packages.glob("Ascend-mindie-atb-models_*.tar.gz"))
    old.unlink()
    standins.make_atb_tarball(packages, "1.0.RC2", standins_arch(), "3.11", "2.1.0", 0, FILL, requirements="ascend-demo-atbdep\n")
    tag = "ascend-build-test/req:mindie"
    result, report = build(workdir, "--engine", "buildkit", "-t", tag)
    assert result.returncode == 0, result.stderr[-3000:]
    ran = run_in("buildkit", tag, "python3", "-c", IMPORTS.replace("import torch_npu,", "import ascend_demo_extra, ascend_demo_atbdep, torch_npu,"))
    assert "imports-ok 2.1.0.post6" in ran.stdout, ran.stderr
    served = [s["file"] for s in report["served"]]
    assert served.count(f"ascend_demo_atbdep-1.0-{standins.STANDIN_BUILD}-py3-none-any.whl") == 1  # mindie (the tarball's)
    assert served.count(f"ascend_demo_extra-1.0-{standins.STANDIN_BUILD}-py3-none-any.whl") == 2     # pta (requirements.txt), mindie
    exported = cli("export", "-C", str(workdir), "-o", str(tmp_path / "export"))
    assert exported.returncode == 0, exported.stderr
    listed = (tmp_path / "export" / "packages.txt").read_text().split()
    assert len(listed) == len(set(listed)) and f"ascend_demo_atbdep-1.0-{standins.STANDIN_BUILD}-py3-none-any.whl" in listed
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
