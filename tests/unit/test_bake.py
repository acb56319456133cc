"""`ascend-build bake`: one target per matrix variant, sharing one base target per arch."""
import json
import shutil
import subprocess

import pytest
import yaml

from clirun import cli
from ascend_build.demo import standins
from ascend_build.scaffold import scaffold

# Keys a bake target may have (docker buildx bake file reference).
TARGET_KEYS = {"args", "annotations", "attest", "cache-from", "cache-to", "context", "contexts", "dockerfile",
               "dockerfile-inline", "entitlements", "inherits", "labels", "matrix", "name", "network", "no-cache",
               "no-cache-filter", "output", "platforms", "pull", "secret", "shm-size", "ssh", "tags", "target", "ulimits"}


@pytest.fixture
def matrix_workdir(tmp_path):
    workdir = tmp_path / "w"
    scaffold(workdir, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    standins.make_chip_package(workdir / "packages", "ops", "310p", "8.5.0", "x86_64", 4096)
    config = yaml.safe_load((workdir / "ascend-build.yaml").read_text())
    config.pop("chip")
    config["matrix"] = {"chip": ["910b", "310p"]}
    (workdir / "ascend-build.yaml").write_text(yaml.safe_dump(config))
    return workdir


def test_bake_file_has_a_target_per_variant_and_a_shared_base(matrix_workdir, tmp_path):
    out = tmp_path / "docker-bake.json"
    result = cli("bake", "-C", matrix_workdir, "-o", out)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"group", "target"}
    assert data["group"]["default"]["targets"] == ["mindie-910b-x86-64", "mindie-310p-x86-64"]
    for name, target in data["target"].items():
        assert set(target) <= TARGET_KEYS, name
        assert (matrix_workdir / ".ascend-build" / "bake" / name / "Dockerfile").is_file()
    for name in data["group"]["default"]["targets"]:
        target = data["target"][name]
        assert target["contexts"] == {"ascend-base": "target:base-x86-64"}
        dockerfile = (matrix_workdir / ".ascend-build/bake" / name / "Dockerfile").read_text()
        assert "FROM ascend-base AS cann" in dockerfile and " AS base" not in dockerfile
        chip = name.split("-")[1]
        assert any(f"Ascend-cann-{chip}-ops" in p.name for p in (matrix_workdir / ".ascend-build/bake" / name / "pkgs/cann").iterdir())
    if shutil.which("docker") and subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0:
        printed = subprocess.run(["docker", "buildx", "bake", "-f", str(out), "--print"], capture_output=True, text=True)
        assert printed.returncode == 0, printed.stderr


def test_bake_without_matrix_is_a_clear_error(tmp_path):
    scaffold(tmp_path, demo=True, arch="x86_64", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    result = cli("bake", "-C", tmp_path, "-o", tmp_path / "b.json")
    assert result.returncode == 1 and "no matrix" in result.stderr and not (tmp_path / "b.json").exists()


def test_missing_variant_packages_fail_naming_the_variant(matrix_workdir, tmp_path):
    next((matrix_workdir / "packages").glob("Ascend-cann-310p-ops*")).unlink()
    result = cli("bake", "-C", matrix_workdir, "-o", tmp_path / "b.json")
    assert result.returncode == 1 and "310p" in result.stderr and "Traceback" not in result.stderr


def test_bake_writes_the_env_a_build_captured(matrix_workdir):
    from ascend_build.bake import bake
    from ascend_build.plan import plan_for
    from ascend_build.render import context_files
    from ascend_build.settings import Options, settings_for
    from ascend_build.spec import load_spec
    from ascend_build.stage_env import CACHE_DIR, EnvStore, known_env

    class Local:                                  # the engine bake looks the base image up in
        def find_image(self, image):
            return {"Id": "sha256:base"}

    spec = load_spec(matrix_workdir)
    data, warnings = bake(matrix_workdir, spec, "mindie", "x86_64", None)
    assert len(warnings) == 2 and all("stage cann" in w and "ascend-build build" in w for w in warnings)
    built = plan_for(settings_for(matrix_workdir, Options(target="mindie", delivery="http", platform="x86_64"),
                                  spec=spec.model_copy(update={"chip": "910b"})))   # what `build` of the 910b variant captures
    store = EnvStore(matrix_workdir / ".ascend-build" / CACHE_DIR)
    while True:
        _, pending = known_env(built, context_files(built), "sha256:base", store)
        if pending is None:
            break
        store.put(pending[2], {f"FAKE_{pending[0].name.upper()}": "/x"})
    data, warnings = bake(matrix_workdir, spec, "mindie", "x86_64", Local())
    assert len(warnings) == 1 and warnings[0].startswith("mindie-310p-x86-64:")
    text = (matrix_workdir / ".ascend-build/bake/mindie-910b-x86-64/Dockerfile").read_text()
    assert 'ENV FAKE_CANN="/x"' in text and 'ENV FAKE_MINDIE="/x"' in text
