"""`ascend-build run --print` on a fake device tree."""
import shlex
from pathlib import Path

from clirun import cli


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
    mounts = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-v"]
    assert mounts == ["/usr/local/bin/npu-smi:/usr/local/bin/npu-smi:ro",
                      "/usr/local/Ascend/driver/lib64:/usr/local/Ascend/driver/lib64:ro",
                      "/usr/local/Ascend/driver/version.info:/usr/local/Ascend/driver/version.info:ro"]
    assert cmd[-3:] == ["img:1", "python3", "-V"]


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
