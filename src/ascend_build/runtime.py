"""`ascend-build run`: the flags an Ascend container needs on this host (ascend-reference.md §6,
§10): NPU devices and read-only driver mounts, or Ascend Docker Runtime; shared memory, IPC and
host network for multi-card jobs, MindIE service and `vllm serve`; profiles for the common cases."""
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .errors import ConfigError

CONTROL_DEVICES = ("davinci_manager", "devmm_svm", "hisi_hdc")
DRIVER = "/usr/local/Ascend/driver"
# Mounted when present. `whole` mounts the whole driver folder: HCCL reads topology files there on
# newer chips (EI0014 when only lib64 is mounted); `lib64` mounts only the libraries.
DRIVER_MOUNTS = {
    "whole": ("/usr/local/dcmi", "/usr/local/bin/npu-smi", DRIVER, "/etc/ascend_install.info",
              "/etc/hccn.conf", "/usr/local/bin/hccn_tool", "/usr/bin/hccn_tool"),
    "lib64": ("/usr/local/dcmi", "/usr/local/bin/npu-smi", f"{DRIVER}/lib64", f"{DRIVER}/version.info",
              "/etc/ascend_install.info"),
}
SIZE = re.compile(r"[1-9][0-9]{0,5}[bkmg]?", re.I)
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,31})?")
BUSY_HINT = ("npu-smi error -8005: the device is held by another container or process; stop it "
             "(`docker ps`), or pass other cards with --devices")


@dataclass(frozen=True)
class RunOptions:
    """How to run: None means "the engine's default"."""

    devices: Optional[List[int]] = None      # None: every card of the host
    driver: str = "whole"                   # whole | lib64
    ascend_runtime: bool = False            # --runtime ascend -e ASCEND_VISIBLE_DEVICES=...
    network: Optional[str] = None           # host | bridge | none
    ipc: Optional[str] = None               # host | private | shareable
    shm_size: Optional[str] = None          # e.g. 16g
    user: Optional[str] = None              # uid[:gid] or name[:group]


# Common cases, as the official guides run them. Options given on the command line win.
PROFILES: Dict[str, RunOptions] = {
    "default": RunOptions(),
    "mindie-service": RunOptions(network="host", shm_size="1g", driver="whole"),
    "multi-card": RunOptions(network="host", ipc="host", driver="whole"),
    # `vllm serve` as the vLLM-Ascend docs run it: its port on the host's network, 1g of shared memory
    "vllm-serve": RunOptions(network="host", shm_size="1g", driver="whole"),
}


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


def _choose(field: str, value: Optional[str], allowed: Sequence[str]) -> Optional[str]:
    if value is not None and value not in allowed:
        raise ConfigError(f"--{field} {value!r} is not one of: {', '.join(allowed)}", fix=f"use --{field} {allowed[0]}")
    return value


def run_options(profile: str = "default", *, devices: Optional[str] = None, driver: Optional[str] = None,
                ascend_runtime: Optional[bool] = None, network: Optional[str] = None, ipc: Optional[str] = None,
                shm_size: Optional[str] = None, user: Optional[str] = None) -> RunOptions:
    """The profile's options with the command line's on top, each checked."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown run profile {profile!r}", fix=f"use one of: {', '.join(PROFILES)}")
    if shm_size is not None and not SIZE.fullmatch(shm_size):
        raise ConfigError(f"cannot read --shm-size {shm_size!r}", fix="give a size such as 512m or 16g")
    if user is not None and not USER.fullmatch(user):
        raise ConfigError(f"cannot read --user {user!r}", fix="give uid[:gid] or name[:group], e.g. --user 1000:1000")
    given = {"devices": parse_devices(devices), "driver": _choose("driver", driver, ("whole", "lib64")),
             "ascend_runtime": ascend_runtime, "network": _choose("network", network, ("host", "bridge", "none")),
             "ipc": _choose("ipc", ipc, ("host", "private", "shareable")), "shm_size": shm_size, "user": user}
    return replace(PROFILES[profile], **{k: v for k, v in given.items() if v is not None})


def run_args(root: Path, options: RunOptions = RunOptions()) -> List[str]:
    """docker/podman run flags for the chosen cards and the driver mounts that exist on this host."""
    root = Path(root)
    present = cards(root)
    chosen = present if options.devices is None else options.devices
    missing = sorted(set(chosen) - set(present))
    if missing:
        raise ConfigError(f"no NPU card {missing} on this host (present: {present or 'none'})",
                          fix="pick cards from the list with --devices, or leave it out for all cards")
    args: List[str] = []
    if options.network:
        args += ["--network", options.network]
    if options.ipc:
        args += ["--ipc", options.ipc]
    if options.shm_size:
        args += ["--shm-size", options.shm_size]
    if options.user:
        args += ["--user", options.user]
    if options.ascend_runtime:      # the runtime adds devices and driver mounts itself
        return args + ["--runtime", "ascend", "-e", f"ASCEND_VISIBLE_DEVICES={','.join(map(str, chosen))}"]
    if not chosen:
        return args
    for number in chosen:
        args += ["--device", f"/dev/davinci{number}"]
    for name in CONTROL_DEVICES:
        if (root / "dev" / name).exists():
            args += ["--device", f"/dev/{name}"]
    for path in DRIVER_MOUNTS[options.driver]:
        if (root / path.lstrip("/")).exists():
            args += ["-v", f"{path}:{path}:ro"]
    return args


def npu_hint(output: str) -> Optional[str]:
    """What to do about a known npu-smi / driver error in `output`."""
    return BUSY_HINT if "-8005" in output else None
