"""`ascend-build run --print` on a fake device tree."""
import shlex
from pathlib import Path

import pytest
from clirun import cli

from ascend_build.runtime import npu_hint


def fake_host(root: Path, cards=(0, 1, 3), mounts=True) -> Path:
    dev = root / "dev"
    dev.mkdir(parents=True)
    for n in cards:
        (dev / f"davinci{n}").touch()
    for name in ("davinci_manager", "devmm_svm", "hisi_hdc"):
        (dev / name).touch()
    (dev / "davinci_other").touch()
    if mounts:
        (root / "usr/local/Ascend/driver/lib64").mkdir(parents=True)
        (root / "usr/local/Ascend/driver/version.info").write_text("Version=25.0\n")
        (root / "usr/local/bin").mkdir(parents=True)
        (root / "usr/local/bin/npu-smi").touch()
    return root


def run_print(root: Path, *args):
    result = cli("run", "--print", "--root", root, *args, "img:1", "--", "python3", "-V")
    return result, shlex.split(result.stdout)


def test_all_cards_control_devices_and_existing_mounts(tmp_path):
    result, cmd = run_print(fake_host(tmp_path))
    assert result.returncode == 0, result.stderr
    devices = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--device"]
    assert devices == ["/dev/davinci0", "/dev/davinci1", "/dev/davinci3", "/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc"]
    assert mounts_of(cmd) == ["/usr/local/bin/npu-smi:/usr/local/bin/npu-smi:ro",
                              "/usr/local/Ascend/driver:/usr/local/Ascend/driver:ro"]
    assert cmd[-3:] == ["img:1", "python3", "-V"]


def mounts_of(cmd):
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == "-v"]


def flag(cmd, name):
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == name]


def test_driver_lib64_mounts_only_the_libraries(tmp_path):
    _, cmd = run_print(fake_host(tmp_path), "--driver", "lib64")
    assert mounts_of(cmd) == ["/usr/local/bin/npu-smi:/usr/local/bin/npu-smi:ro",
                              "/usr/local/Ascend/driver/lib64:/usr/local/Ascend/driver/lib64:ro",
                              "/usr/local/Ascend/driver/version.info:/usr/local/Ascend/driver/version.info:ro"]


def test_hccn_files_are_mounted_when_present(tmp_path):
    root = fake_host(tmp_path)
    (root / "etc").mkdir()
    (root / "etc/hccn.conf").write_text("address_0=10.0.0.2\n")
    (root / "usr/local/bin/hccn_tool").touch()
    _, cmd = run_print(root)
    assert {"/etc/hccn.conf:/etc/hccn.conf:ro", "/usr/local/bin/hccn_tool:/usr/local/bin/hccn_tool:ro"} <= set(mounts_of(cmd))


def test_shm_ipc_network_and_user_options(tmp_path):
    result, cmd = run_print(fake_host(tmp_path), "--shm-size", "16g", "--ipc", "host", "--network", "host",
                            "--user", "1000:1000")
    assert result.returncode == 0, result.stderr
    assert (flag(cmd, "--shm-size"), flag(cmd, "--ipc"), flag(cmd, "--network"), flag(cmd, "--user")) == (
        ["16g"], ["host"], ["host"], ["1000:1000"])
    assert cmd.index("--user") < cmd.index("img:1")


def test_ascend_runtime_mode_replaces_devices_and_mounts(tmp_path):
    _, cmd = run_print(fake_host(tmp_path), "--ascend-runtime", "--devices", "0,3")
    assert flag(cmd, "--runtime") == ["ascend"] and flag(cmd, "-e") == ["ASCEND_VISIBLE_DEVICES=0,3"]
    assert "--device" not in cmd and "-v" not in cmd


def test_mindie_service_profile_and_override(tmp_path):
    _, cmd = run_print(fake_host(tmp_path), "--profile", "mindie-service")
    assert flag(cmd, "--network") == ["host"] and flag(cmd, "--shm-size") == ["1g"]
    assert "/usr/local/Ascend/driver:/usr/local/Ascend/driver:ro" in mounts_of(cmd)
    _, cmd = run_print(fake_host(tmp_path / "b"), "--profile", "mindie-service", "--shm-size", "8g", "--network", "bridge")
    assert flag(cmd, "--shm-size") == ["8g"] and flag(cmd, "--network") == ["bridge"]


def test_vllm_serve_profile_runs_on_the_hosts_network(tmp_path):
    _, cmd = run_print(fake_host(tmp_path), "--profile", "vllm-serve")
    assert flag(cmd, "--network") == ["host"] and flag(cmd, "--shm-size") == ["1g"]
    assert "/usr/local/Ascend/driver:/usr/local/Ascend/driver:ro" in mounts_of(cmd)


def test_multi_card_profile_shares_ipc_and_network(tmp_path):
    _, cmd = run_print(fake_host(tmp_path), "--profile", "multi-card")
    assert flag(cmd, "--ipc") == ["host"] and flag(cmd, "--network") == ["host"]


@pytest.mark.parametrize("args, said", [
    (["--profile", "nope"], "unknown run profile"),
    (["--shm-size", "16g;rm"], "cannot read --shm-size"),
    (["--user", "root$(id)"], "cannot read --user"),
    (["--ipc", "container:x"], "--ipc 'container:x' is not one of"),
    (["--driver", "half"], "--driver 'half' is not one of"),
    (["--network", "mine"], "--network 'mine' is not one of"),
])
def test_bad_run_options_are_clear_errors(tmp_path, args, said):
    result, _ = run_print(fake_host(tmp_path), *args)
    assert result.returncode == 1 and said in result.stderr and "Traceback" not in result.stderr


def test_busy_device_hint():
    assert "another container" in npu_hint("dcmi model initialized failed, because the device is used. ret is -8005")
    assert npu_hint("ok") is None


def test_devices_picks_cards(tmp_path):
    _, cmd = run_print(fake_host(tmp_path), "--devices", "1")
    devices = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--device"]
    assert devices[0] == "/dev/davinci1" and "/dev/davinci0" not in devices


def test_missing_card_is_a_clear_error(tmp_path):
    result, _ = run_print(fake_host(tmp_path), "--devices", "7")
    assert result.returncode == 1 and "no NPU card [7]" in result.stderr and "Traceback" not in result.stderr


def test_host_without_npu_says_so_and_runs_without(tmp_path):
    (tmp_path / "dev").mkdir()
    result, cmd = run_print(tmp_path)
    assert result.returncode == 0 and "no Ascend NPU on this host" in result.stderr
    assert "--device" not in cmd and "-v" not in cmd
