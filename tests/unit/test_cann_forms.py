"""Runtime-only CANN: `cann: toolkit | nnae | nnrt`, inferred from the files; nnrt/nnae packages
up to 8.3 with their own home and set_env.sh; for 8.5+ nnrt is the toolkit with --whitelist=nnrt;
kernels/ops installed onto the form with --type."""
import pytest

from ascend_build.catalog.problems import AMBIGUOUS_SLOT, MISSING_COMPONENT
from ascend_build.demo import standins
from ascend_build.plan import plan_for
from ascend_build.render import context_files
from ascend_build.settings import Options, settings_for
from ascend_build.spec import BuildSpec

from test_check import FILL, errors, run


def family_set(tmp_path, name):
    work = tmp_path / "work"
    standins.generate(work / "packages", cann=name, arch="x86_64", chip="910b", fill=FILL)
    return work


def files(work, **config):
    (work / "ascend-build.yaml").write_text("".join(f"{k}: {v}\n" for k, v in config.items())
                                            + "base_image: localhost/ascend-build-base:bookworm\n")
    return context_files(plan_for(settings_for(work, Options(target="cann", platform="x86_64"))))


def test_nnrt_is_inferred_and_installed_in_its_own_home(tmp_path):
    work = family_set(tmp_path, "8.3.RC1-nnrt")
    selection = run(work, "cann")
    assert selection.ok and selection.find("toolkit")[0].component == "nnrt"
    out = files(work)
    script = out["scripts/install_cann.sh"]
    assert 'ab_install nnrt "$PKG_DIR"/Ascend-cann-nnrt_8.3.RC1_linux-x86_64.run' in script
    assert "--type=nnrt" in script and "ab_source /usr/local/Ascend/nnrt/set_env.sh" in script
    assert "# after install: source /usr/local/Ascend/nnrt/set_env.sh," in out["Dockerfile"]
    assert "ascend-toolkit" not in out["Dockerfile"].split("FROM base AS cann", 1)[1].split("FROM", 1)[0]


def test_two_forms_need_cann_in_the_config(tmp_path):
    work = family_set(tmp_path, "8.3.RC1-nnrt")
    standins.make_toolkit(work / "packages", "8.3.RC1", "x86_64", FILL)
    selection = run(work, "cann")
    problem = next(p for p in selection.problems if p.code == AMBIGUOUS_SLOT)
    assert "several CANN forms" in problem.message and "cann:" in problem.fix and not selection.ok
    assert run(work, "cann", cann="nnrt").find("toolkit")[0].component == "nnrt"
    assert run(work, "cann", cann="toolkit").find("toolkit")[0].component == "toolkit"
    assert MISSING_COMPONENT in errors(run(work, "cann", cann="nnae"))


def test_nnae_has_its_own_home(tmp_path):
    work = family_set(tmp_path, "8.3.RC1")
    next((work / "packages").glob("Ascend-cann-toolkit_*")).unlink()
    standins.make_runtime(work / "packages", "nnae", "8.3.RC1", "x86_64", FILL)
    assert run(work, "cann").ok
    script = files(work)["scripts/install_cann.sh"]
    assert "ab_install nnae" in script and "--type=nnae" in script and "/usr/local/Ascend/nnae/set_env.sh" in script


def test_from_8_5_nnrt_is_the_toolkit_with_a_whitelist(tmp_path):
    work = family_set(tmp_path, "8.5.0")
    assert run(work, "cann", cann="nnrt").find("toolkit")[0].component == "toolkit"
    script = files(work, cann="nnrt")["scripts/install_cann.sh"]
    assert "Ascend-cann-toolkit_8.5.0_linux-x86_64.run --install --quiet --install-path=/usr/local/Ascend --install-for-all --whitelist=nnrt" in script
    assert "--whitelist" not in files(work)["scripts/install_cann.sh"]
    old = family_set(tmp_path / "old", "8.3.RC1")
    assert MISSING_COMPONENT in errors(run(old, "cann", cann="nnrt"))   # 8.3: the nnrt package is needed


def test_the_config_key_is_checked():
    with pytest.raises(Exception):
        BuildSpec(cann="runtime")


def test_verify_looks_for_the_toolkit_files_in_the_forms_home():
    from ascend_build.contract import component_label
    from ascend_build.verify import probes_for
    labels = {component_label("toolkit", "version"): "8.3.RC1",
              component_label("toolkit", "file"): "Ascend-cann-nnrt_8.3.RC1_linux-x86_64.run"}
    paths = [p.get("path") or p.get("glob") for p in probes_for(labels) if p.get("path") or p.get("glob")]
    assert "nnrt/set_env.sh" in paths and "nnrt/latest/*-linux/ascend_nnrt_install.info" in paths
    labels[component_label("toolkit", "file")] = "Ascend-cann-toolkit_8.3.RC1_linux-x86_64.run"
    assert "ascend-toolkit/set_env.sh" in [p.get("path") for p in probes_for(labels)]
