"""`ascend-build doctor [IMAGE]`: the NPU host checked before the first run (ascend-reference.md §6,
§10, §11): the driver against the image's CANN release (the driver each CANN release requires,
from ascend-deployer's data), the device nodes and whether the image's runtime user can open them,
npu-smi answering (-8005: the device is held by another container), Ascend Docker Runtime,
/etc/ascend_install.info and, for multi-card profiles, hccn.conf. Every path is read under
`root`, so another root (a prepared tree) can be checked without an NPU."""
import json
import os
import re
import stat
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

from .catalog.deployer import current
from .catalog.versions import version_key
from .contract import component_label, label
from .errors import ImageError
from .readback import image_argument, read_labels
from .runtime import BUSY_HINT, CONTROL_DEVICES, DRIVER, cards

OK, NOTE, WARNING, ERROR = "ok", "note", "warning", "error"
VERSION_INFO = f"{DRIVER}/version.info"
NPU_SMI = "/usr/local/bin/npu-smi"
RUNTIME_DIR = "/usr/local/Ascend/Ascend-Docker-Runtime"
DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_IDS = (1000, 1000)               # HwHiAiUser, as the driver installs it
MAX_READ = 1 << 16


@dataclass(frozen=True)
class Row:
    check: str
    level: str                           # ok | note | warning | error
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class ImageFacts:
    """What the checks need of an image: its CANN release and runtime user (from its labels)."""

    image: str
    cann: Optional[str]
    user: str
    uid: int
    gid: int

    @classmethod
    def from_labels(cls, image: str, labels: dict) -> "ImageFacts":
        """`labels`: checked labels (readback.read_labels); an image from before the user-ids label
        counts with HwHiAiUser's 1000:1000."""
        ids = labels.get(label("user-ids")) or ""
        user = labels.get(label("user")) or ""
        uid, gid = (int(x) for x in ids.split(":")) if ids else (DEFAULT_IDS if user else (0, 0))
        cann = next((labels[component_label(c, "version")] for c in ("toolkit", "nnrt", "nnae")
                     if labels.get(component_label(c, "version"))), None)
        return cls(image, cann, user or "root", uid, gid)


def _read(path: Path) -> Optional[str]:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_READ).decode("utf-8", "replace")
    except OSError:
        return None


def driver_version(text: str) -> Optional[str]:
    """`Version=` (else `package_version=`) of the driver's version.info."""
    fields = dict(re.findall(r"(?mi)^\s*([a-z_]+)\s*=\s*(\S+)\s*$", text))
    fields = {k.lower(): v for k, v in fields.items()}
    return fields.get("version") or fields.get("package_version")


def _driver(root: Path, image: Optional[ImageFacts]) -> Row:
    text = _read(root / VERSION_INFO.lstrip("/"))
    if text is None:
        return Row("driver", ERROR, f"no NPU driver: {VERSION_INFO} is missing",
                   "install the NPU driver and firmware (Ascend-hdk-<chip>-npu-driver_<version>_linux-<arch>.run)")
    found = driver_version(text)
    try:
        version_key(found or "")
    except ValueError:
        return Row("driver", ERROR, f"{VERSION_INFO} names no driver version (no Version= line)",
                   "reinstall the NPU driver")
    if image is None or image.cann is None:
        return Row("driver", OK, f"driver {found}" + (" (give an IMAGE to check it against its CANN)" if image is None
                                                      else f" ({image.image} names no CANN release)"))
    data, source = current()
    needs = next((d for c, d in (data.get("cann_driver") or {}).items()
                  if version_key(c) == version_key(image.cann)), None)
    if needs is None:
        return Row("driver", WARNING, f"driver {found}; the driver CANN {image.cann} requires is not known (data: {source})",
                   "run `ascend-build data update` for Huawei's newest tables, or check the CANN release notes")
    if version_key(found) < version_key(needs):
        return Row("driver", ERROR, f"driver {found} is older than the {needs} that {image.image}'s CANN {image.cann} "
                   f"requires (data: {source})", f"upgrade the host's driver and firmware to {needs} or newer, or "
                   f"use an image with an older CANN release")
    return Row("driver", OK, f"driver {found}; CANN {image.cann} requires {needs} or newer")


def _access(st: os.stat_result, uid: int, gid: int) -> bool:
    mode = st.st_mode
    return (uid == 0 or (st.st_uid == uid and mode & 0o600 == 0o600) or (st.st_gid == gid and mode & 0o060 == 0o060)
            or mode & 0o006 == 0o006)


def _devices(root: Path, image: Optional[ImageFacts]) -> List[Row]:
    numbers = cards(root)
    if not numbers:
        return [Row("devices", ERROR, "no NPU device nodes (/dev/davinci0, ...)",
                    "check that the NPU driver is loaded (`lsmod | grep drv_`, `npu-smi info`)")]
    names = [f"davinci{n}" for n in numbers] + list(CONTROL_DEVICES)
    missing = [n for n in CONTROL_DEVICES if not (root / "dev" / n).exists()]
    rows = [Row("devices", ERROR if missing else OK, f"{len(numbers)} cards (davinci{','.join(map(str, numbers))})"
                + (f"; missing /dev/{', /dev/'.join(missing)}" if missing else f", {', '.join(CONTROL_DEVICES)}"),
                "reinstall the NPU driver (the control devices come with it)" if missing else "")]
    if image is None:
        return rows
    owners = {}
    for name in names:
        try:
            st = os.stat(root / "dev" / name)
        except OSError:
            continue
        if not _access(st, image.uid, image.gid):
            owners[f"/dev/{name}"] = f"{st.st_uid}:{st.st_gid} {stat.filemode(st.st_mode)[1:]}"
    if not owners:
        return rows + [Row("device access", OK, f"{image.image}'s runtime user {image.user} ({image.uid}:{image.gid}) "
                           "can open the devices")]
    first = next(iter(owners.values()))
    uid, gid = first.split()[0].split(":")
    listed = ", ".join(f"{n} ({o})" for n, o in list(owners.items())[:4]) + (" ..." if len(owners) > 4 else "")
    return rows + [Row("device access", WARNING, f"{image.image}'s runtime user {image.user} ({image.uid}:{image.gid}) "
                       f"cannot open {listed}",
                       f"run as the devices' group: `ascend-build run --user {image.uid}:{gid} ...`, or rebuild with "
                       f"`user: {{uid: {uid}, gid: {gid}}}` in ascend-build.yaml (the host's HwHiAiUser)")]


def _npu_smi(root: Path, timeout: float) -> Row:
    path = root / NPU_SMI.lstrip("/")
    if not path.exists():
        return Row("npu-smi", WARNING, f"{NPU_SMI} is missing (containers get it mounted from the host)",
                   "install the NPU driver's tools (npu-smi comes with the driver)")
    try:
        done = subprocess.run([str(path), "info"], capture_output=True, text=True, errors="replace", timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Row("npu-smi", ERROR, f"`npu-smi info` did not answer in {timeout:g} s",
                   "check the driver (`dmesg`), the device may be hung: reset it or reboot")
    except OSError as exc:
        return Row("npu-smi", ERROR, f"`npu-smi info` cannot run: {exc.strerror or exc}", "reinstall the NPU driver")
    output = (done.stdout + done.stderr).strip()
    if "-8005" in output:
        return Row("npu-smi", ERROR, "npu-smi error -8005", BUSY_HINT)
    if done.returncode != 0:
        return Row("npu-smi", ERROR, f"`npu-smi info` failed (exit {done.returncode}): {output[-300:]}",
                   "check the driver and firmware versions (`npu-smi info -t board -i 0`), and `dmesg`")
    return Row("npu-smi", OK, "`npu-smi info` answers")


def _runtime(root: Path) -> Row:
    daemon = _read(root / DAEMON_JSON.lstrip("/")) or ""
    try:
        runtimes = json.loads(daemon).get("runtimes", {}) if daemon.strip() else {}
    except (ValueError, AttributeError):
        runtimes = {}
    if (root / RUNTIME_DIR.lstrip("/")).is_dir() or (isinstance(runtimes, dict) and "ascend" in runtimes):
        return Row("Ascend Docker Runtime", OK, "installed: `ascend-build run --ascend-runtime` can use it")
    return Row("Ascend Docker Runtime", NOTE, "not installed: `ascend-build run` passes the devices and driver mounts "
               "itself", "nothing to do (install it for ASCEND_VISIBLE_DEVICES and Kubernetes device plugins)")


def _file(root: Path, path: str, check: str, level: str, why: str, fix: str) -> Row:
    if (root / path.lstrip("/")).is_file():
        return Row(check, OK, f"{path} is present")
    return Row(check, level, f"{path} is missing: {why}", fix)


def doctor(root: Path, image: Optional[ImageFacts] = None, multi_card: bool = False, npu_smi: bool = True,
           timeout: float = 30) -> List[Row]:
    """The host under `root`, for `image` when given; `multi_card`: also what multi-card jobs need."""
    root = Path(root)
    rows = [_driver(root, image), *_devices(root, image)]
    if npu_smi:
        rows.append(_npu_smi(root, timeout))
    rows.append(_runtime(root))
    rows.append(_file(root, "/etc/ascend_install.info", "ascend_install.info", WARNING,
                      "the driver's install record, mounted into containers (tools read the driver path from it)",
                      "reinstall the NPU driver, which writes it"))
    if multi_card:
        rows.append(_file(root, "/etc/hccn.conf", "hccn.conf", WARNING, "multi-card jobs (HCCL) read the NPU network "
                          "settings from it", "configure the NPU network with hccn_tool (it writes /etc/hccn.conf)"))
    return rows


def as_json(rows: List[Row], root: Path, image: Optional[ImageFacts]) -> dict:
    return {"host_root": str(root), "image": asdict(image) if image else None, "ok": not errors(rows),
            "rows": [asdict(r) for r in rows]}


def errors(rows: List[Row]) -> List[Row]:
    return [r for r in rows if r.level == ERROR]


def image_facts(engine, image: str, user: Optional[str] = None, required: bool = True) -> Optional[ImageFacts]:
    """The facts of `image` in the engine's store (None when it is not there, or, unless
    `required`, not built by ascend-build); a numeric `user` (`--user UID[:GID]`) replaces its user."""
    info = engine.find_image(image_argument(image))
    if info is None:
        if required:
            raise ImageError(f"image {image} is not in {engine.binary}'s store",
                             fix=f"pull or load it first (`{engine.binary} pull {image}`, `ascend-build load`)")
        return None
    try:
        facts = ImageFacts.from_labels(image, read_labels(info, image).used)
    except ImageError:
        if required:
            raise
        return None
    ids = re.fullmatch(r"([0-9]{1,10})(?::([0-9]{1,10}))?", user or "")
    if ids:
        facts = ImageFacts(image, facts.cann, user, int(ids.group(1)), int(ids.group(2) or ids.group(1)))
    return facts


def table(rows: List[Row]):
    """The rows as a rich table."""
    from rich.markup import escape
    from rich.table import Table

    colour = {OK: "green", NOTE: "cyan", WARNING: "yellow", ERROR: "red"}
    out = Table("check", "status", "detail", "fix")
    for row in rows:
        out.add_row(escape(row.check), f"[{colour[row.level]}]{row.level}[/]", escape(row.detail), escape(row.fix))
    return out
