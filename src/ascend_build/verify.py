"""`ascend-build verify IMAGE`: smoke tests inside an image, chosen from its labels, needing no
NPU. One container runs the probe as the image's default user, one as the runtime user. The
labels are checked first (readback.py), so a malformed one stops verify before any container
runs; what the probe prints is checked by type too (the image's python3 may print anything)."""
import json
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from .capture import differences, normalise
from .catalog.naming import identify
from .catalog.nocuda import never_patterns
from .components.registry import components
from .contract import DEFAULT_INSTALL_PATH, LABEL_NS, PKG_DIR, component_label, label
from .engines.base import Engine
from .readback import image_argument, read_labels
from .runtime import cards, npu_hint, run_args

MAX_DETAIL = 600


class Check(BaseModel):
    """One check the probe reports."""

    model_config = ConfigDict(strict=True, extra="forbid")
    name: str
    ok: bool
    detail: str = ""


CHECKS = TypeAdapter(List[Check])
PROBLEMS = TypeAdapter(List[str])
CAPTURE = TypeAdapter(Dict[str, Dict[str, str]])


def check(name: str, ok: bool, detail: str) -> dict:
    return {"name": name[:200], "ok": ok, "detail": detail[-MAX_DETAIL:]}


def probes_for(labels: Dict[str, str]) -> List[dict]:
    """The probes of every component whose packages the image's labels name; the toolkit's paths
    follow the CANN form installed (an nnrt/nnae package has its own home)."""
    file = labels.get(component_label("toolkit", "file"), "")
    found = identify(file)
    form = found.component if found and found.component in ("nnrt", "nnae") else "toolkit"

    def on_form(value):
        if form == "toolkit" or not isinstance(value, str):
            return value
        return value.replace("ascend-toolkit/", f"{form}/").replace("ascend_toolkit_", f"ascend_{form}_")
    probes = [{k: on_form(v) if k in ("path", "glob") else v for k, v in p.items()}
              for c in components() for p in c.probes if component_label(p["slot"], "version") in labels]
    if file.endswith(".whl"):          # CANN installed with pip: no home under the install path, a distribution
        probes = [p for p in probes if not (p["slot"] == "toolkit" and p["kind"] in ("file", "info-version"))]
        probes.insert(0, {"kind": "dist", "slot": "toolkit", "name": "toolkit version matches label",
                          "dist": "ascend-cann-toolkit"})
    return probes


PYTHON_FIX = "the image's python3 must start and end: try `docker run --rm --entrypoint python3 IMAGE -c pass`"


def last_json(result: subprocess.CompletedProcess, adapter: TypeAdapter):
    """The last line of the output, read by `adapter`; ValueError when it is not that."""
    lines = result.stdout.strip().splitlines()
    try:
        return adapter.validate_json(lines[-1] if lines else "")
    except ValidationError as err:
        raise ValueError(result.stderr.strip()[-300:] if result.returncode else f"unexpected probe output: {err}") from None


def probe_checks(engine: Engine, image: str, probe: str, labels: Dict[str, str], probes: List[dict]) -> List[dict]:
    try:
        found = last_json(engine.run_python(image, probe, ["checks", json.dumps(labels), json.dumps(probes), LABEL_NS,
                                                    PKG_DIR, json.dumps(never_patterns(components()))], purpose="verify", fix=PYTHON_FIX,
                                            step=f"the python3 of image {image} (verify's probe)"), CHECKS)
    except ValueError as err:
        return [check("probe runs in the image", False, str(err) or "the probe did not run")]
    return [check(c.name, c.ok, c.detail) for c in found]


def env_check(engine: Engine, image: str, lines: List[str]) -> Optional[dict]:
    """The image's ENV against what sourcing its stages' set_env steps (the set-env label) again
    gives in it, for the variables sourcing sets; None for an image without set_env steps."""
    if not lines:
        return None
    name = "ENV equals what the set_env.sh files give"
    script = (Path(__file__).parent / "capture.py").read_text()
    result = engine.run_python(image, script, ["capture", json.dumps(lines)], purpose="verify",
                               step=f"the set_env.sh files of image {image} (verify's ENV check)",
                               fix="a set_env.sh must return when it is sourced")
    try:
        found = last_json(result, CAPTURE)
        before, after = found["before"], found["after"]
    except (ValueError, KeyError):
        return check(name, False, "sourcing failed: " + (result.stdout + result.stderr).strip()[-300:])
    differ = differences(before, after)
    detail = "; ".join(f"{key}: image {before.get(key, '(unset)')!r}, set_env.sh gives {normalise(key, after[key])!r}" for key in differ)
    return check(name, not differ, detail or f"{len(lines)} steps sourced, no difference")


def user_check(engine: Engine, image: str, probe: str, user: str, root: str, modules: str) -> dict:
    name = f"runtime user {user} can use the install"
    try:
        problems = last_json(engine.run_python(image, probe, ["user", root, modules], user, purpose="verify",
                                               fix=PYTHON_FIX, step=f"the python3 of image {image} (verify's "
                                                                    f"probe as user {user})"), PROBLEMS)
    except ValueError as err:
        return check(name, False, str(err) or "the probe did not run")
    return check(name, not problems, str(problems) if problems else "reads the install" + (f" and imports {modules}" if modules else ""))


def verify(engine: Engine, image: str, host_root: Path = Path("/")) -> dict:
    labels = read_labels(engine.inspect(image_argument(image)), image)
    probes = probes_for(labels.used)
    probe = (Path(__file__).parent / "probe.py").read_text()
    checks = probe_checks(engine, image, probe, labels.used, probes)
    checks += [c for c in [env_check(engine, image, labels.set_env)] if c]
    user = labels.used.get(label("user"))
    if user:
        modules = ",".join(p["module"] for p in probes if p.get("runtime_user"))
        checks.append(user_check(engine, image, probe, user, labels.used.get(label("install-path")) or DEFAULT_INSTALL_PATH, modules))
    if cards(host_root):
        devices = run_args(host_root)
        npu = engine.run_container(image, ["npu-smi", "info"], flags=devices, timeout=120, purpose="npu",
                                   step=f"npu-smi info in image {image}", fix="check the NPU driver with npu-smi on the host")
        output = npu.stdout + npu.stderr
        checks.append(check("npu-smi info", npu.returncode == 0, npu_hint(output) or output[-300:]))
        for c in components():
            for slot, name, code in c.device_checks:
                if component_label(slot, "version") not in labels.used:
                    continue
                ran = engine.run_container(image, ["python3", "-c", code], flags=devices, purpose="npu",
                                           step=f"{name} (python3) in image {image}", fix=PYTHON_FIX)
                checks.append(check(name, ran.returncode == 0, (ran.stdout + ran.stderr)[-300:]))
    else:
        checks.append(check("NPU checks", True, "skipped: no /dev/davinci* on this host"))
    return {"image": image, "ok": all(c["ok"] for c in checks), "checks": checks}

