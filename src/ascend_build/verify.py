"""`ascend-build verify IMAGE`: smoke tests inside an image, chosen from its labels, needing no
NPU. One container runs the probe as the image's default user, one as the runtime user."""
import json
from pathlib import Path
from typing import Dict, List, Optional

from .capture import differences, normalise
from .catalog.naming import identify
from .components.registry import components
from .contract import DEFAULT_INSTALL_PATH, LABEL_NS, PKG_DIR, SET_ENV_LABEL, component_label, image_labels, label
from .engines.base import Engine
from .runtime import cards, npu_hint, run_args

NPU_TENSOR = "import torch, torch_npu; x = torch.ones(2, 2).npu(); print((x + x).cpu())"


def probes_for(labels: Dict[str, str]) -> List[dict]:
    """The probes of every component whose packages the image's labels name; the toolkit's paths
    follow the CANN form installed (an nnrt/nnae package has its own home)."""
    found = identify(labels.get(component_label("toolkit", "file"), ""))
    form = found.component if found and found.component in ("nnrt", "nnae") else "toolkit"

    def on_form(value):
        if form == "toolkit" or not isinstance(value, str):
            return value
        return value.replace("ascend-toolkit/", f"{form}/").replace("ascend_toolkit_", f"ascend_{form}_")
    return [{k: on_form(v) if k in ("path", "glob") else v for k, v in p.items()}
            for c in components() for p in c.probes if component_label(p["slot"], "version") in labels]


PYTHON_FIX = "the image's python3 must start and end: try `docker run --rm --entrypoint python3 IMAGE -c pass`"


def _run_probe(engine: Engine, image: str, script: str, args: List[str], user: Optional[str] = None):
    as_user = f" as user {user}" if user else ""
    result = engine.run_container(image, ["-", *args], stdin=script, network="none", entrypoint="python3", user=user,
                                  purpose="verify", step=f"the python3 of image {image} (verify's probe{as_user})",
                                  fix=PYTHON_FIX)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None if result.returncode == 0 else (result.stderr.strip() or "the probe did not run")


def env_check(engine: Engine, image: str, labels: Dict[str, str]) -> Optional[dict]:
    """The image's ENV against what sourcing its stages' set_env steps (the set-env label) again
    gives in it, for the variables sourcing sets; None for an image without set_env steps."""
    lines = json.loads(labels.get(SET_ENV_LABEL, "[]"))
    if not lines:
        return None
    name = "ENV equals what the set_env.sh files give"
    script = (Path(__file__).parent / "capture.py").read_text()
    result = engine.run_container(image, ["-", "capture", json.dumps(lines)], stdin=script, network="none", entrypoint="python3",
                                  purpose="verify", step=f"the set_env.sh files of image {image} (verify's ENV check)",
                                  fix="a set_env.sh must return when it is sourced")
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
        before, after = found["before"], found["after"]
    except (IndexError, ValueError, KeyError, TypeError):
        return {"name": name, "ok": False, "detail": "sourcing failed: " + (result.stdout + result.stderr).strip()[-300:]}
    differ = differences(before, after)
    detail = "; ".join(f"{key}: image {before.get(key, '(unset)')!r}, set_env.sh gives {normalise(key, after[key])!r}" for key in differ)
    return {"name": name, "ok": not differ, "detail": detail[-600:] or f"{len(lines)} steps sourced, no difference"}


def verify(engine: Engine, image: str, host_root: Path = Path("/")) -> dict:
    labels = image_labels(engine.inspect(image), image)
    probes = probes_for(labels)
    probe = (Path(__file__).parent / "probe.py").read_text()
    checks = _run_probe(engine, image, probe, ["checks", json.dumps(labels), json.dumps(probes), LABEL_NS, PKG_DIR])
    if not isinstance(checks, list):
        checks = [{"name": "probe runs in the image", "ok": False, "detail": str(checks)}]
    checks += [c for c in [env_check(engine, image, labels)] if c]
    user = labels.get(label("user"))
    if user:
        modules = ",".join(p["module"] for p in probes if p.get("runtime_user"))
        root = labels.get(label("install-path"), DEFAULT_INSTALL_PATH)
        problems = _run_probe(engine, image, probe, ["user", root, modules], user)
        ok = problems == []
        detail = "reads the install" + (f" and imports {modules}" if modules else "") if ok else str(problems)
        checks.append({"name": f"runtime user {user} can use the install", "ok": ok, "detail": detail})
    if cards(host_root):
        devices = run_args(host_root)
        npu = engine.run_container(image, ["npu-smi", "info"], flags=devices, timeout=120, purpose="npu",
                                   step=f"npu-smi info in image {image}", fix="check the NPU driver with npu-smi on the host")
        output = npu.stdout + npu.stderr
        checks.append({"name": "npu-smi info", "ok": npu.returncode == 0, "detail": npu_hint(output) or output[-300:]})
        if component_label("torch_npu", "version") in labels:
            tensor = engine.run_container(image, ["python3", "-c", NPU_TENSOR], flags=devices, purpose="npu",
                                          step=f"the NPU tensor test (python3) of image {image}", fix=PYTHON_FIX)
            checks.append({"name": "tensor on the NPU", "ok": tensor.returncode == 0, "detail": (tensor.stdout + tensor.stderr)[-300:]})
    else:
        checks.append({"name": "NPU checks", "ok": True, "detail": "skipped: no /dev/davinci* on this host"})
    return {"image": image, "ok": all(c["ok"] for c in checks), "checks": checks}
