"""`ascend-build run`: the devices and read-only driver mounts an Ascend container needs on this
host, without ascend-docker-runtime."""
import re
from pathlib import Path
from typing import List, Optional

from .errors import ConfigError

CONTROL_DEVICES = ("davinci_manager", "devmm_svm", "hisi_hdc")
DRIVER_MOUNTS = (
    "/usr/local/dcmi",
    "/usr/local/bin/npu-smi",
    "/usr/local/Ascend/driver/lib64",
    "/usr/local/Ascend/driver/version.info",
    "/etc/ascend_install.info",
)


def cards(root: Path) -> List[int]:
    """NPU card numbers present under root/dev (davinci0, davinci1, ...)."""
    dev = Path(root) / "dev"
    found = [re.fullmatch(r"davinci(\d+)", p.name) for p in dev.glob("davinci*")] if dev.is_dir() else []
    return sorted(int(m.group(1)) for m in found if m)


def parse_devices(text: Optional[str]) -> Optional[List[int]]:
    if not text:
        return None
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"cannot read --devices {text!r}", fix="give card numbers separated by commas, e.g. --devices 0,1") from None


def run_args(root: Path, wanted: Optional[List[int]] = None) -> List[str]:
    """docker/podman run flags for the cards (all, or `wanted`) and the driver mounts that exist."""
    root = Path(root)
    present = cards(root)
    chosen = present if wanted is None else wanted
    missing = sorted(set(chosen) - set(present))
    if missing:
        raise ConfigError(f"no NPU card {missing} on this host (present: {present or 'none'})",
                          fix="pick cards from the list with --devices, or leave it out for all cards")
    args: List[str] = []
    if not chosen:
        return args
    for number in chosen:
        args += ["--device", f"/dev/davinci{number}"]
    for name in CONTROL_DEVICES:
        if (root / "dev" / name).exists():
            args += ["--device", f"/dev/{name}"]
    for path in DRIVER_MOUNTS:
        if (root / path.lstrip("/")).exists():
            args += ["-v", f"{path}:{path}:ro"]
    return args
