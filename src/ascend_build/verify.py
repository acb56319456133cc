"""`ascend-build verify IMAGE`: smoke tests inside an image, chosen from its labels, needing no
NPU. One container runs the probe as the image's default user, one as the runtime user."""
import json
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

from .components import LABEL_NS
from .engines.base import Engine
from .errors import ConfigError
from .runtime import cards, npu_hint, run_args

# Runs inside the image with `python3 -`, without sourcing anything: what a plain
# `docker run IMAGE python3 ...` sees. Prints one JSON list of checks.
PROBE = r'''
import glob, importlib, json, os, subprocess, sys
labels = json.loads(sys.argv[1])
ns = sys.argv[2]
root = labels.get(ns + ".install-path", "/usr/local/Ascend")
checks = []
def check(name, ok, detail=""):
    checks.append({"name": name, "ok": bool(ok), "detail": detail})
def version(slot):
    return labels.get(ns + "." + slot + ".version")
def base(v):
    return (v or "").split("+")[0]

if version("toolkit"):
    path = os.path.join(root, "ascend-toolkit/set_env.sh")
    check("toolkit set_env.sh present", os.path.isfile(path), path)
    infos = glob.glob(os.path.join(root, "ascend-toolkit/latest/*-linux/ascend_toolkit_install.info"))
    found = ""
    for info in infos:
        for line in open(info):
            if line.startswith("version="):
                found = line.split("=", 1)[1].strip()
    check("toolkit version matches label", found == version("toolkit"), f"installed {found or 'none'}, label {version('toolkit')}")
    check("toolkit environment set without sourcing", os.environ.get("ASCEND_TOOLKIT_HOME") and
          os.path.isdir(os.environ["ASCEND_TOOLKIT_HOME"]), "ASCEND_TOOLKIT_HOME=" + os.environ.get("ASCEND_TOOLKIT_HOME", "(unset)"))
if version("nnal"):
    path = os.path.join(root, "nnal/atb/set_env.sh")
    check("nnal set_env.sh present", os.path.isfile(path), path)
    home = os.environ.get("ATB_HOME_PATH", "")
    check("ATB environment set without sourcing", home and os.path.isdir(home), "ATB_HOME_PATH=" + (home or "(unset)"))
modules = []
if version("torch"):
    modules.append(("torch", version("torch")))
if version("torch-npu"):
    modules.append(("torch_npu", version("torch-npu")))
if version("mindie"):
    path = os.path.join(root, "mindie/set_env.sh")
    check("mindie set_env.sh present", os.path.isfile(path), path)
    latest = os.path.realpath(os.path.join(root, "mindie/latest"))
    check("mindie version matches label", os.path.basename(latest) == version("mindie"), f"installed {os.path.basename(latest)}, label {version('mindie')}")
    modules += [("mindie_llm", None), ("atb_llm", None)]
for name, want in modules:
    try:
        mod = importlib.import_module(name)
        got = getattr(mod, "__version__", "")
        ok = want is None or base(got) == base(want)
        check(f"import {name}", ok, f"{name} {got}" + ("" if ok else f", label {want}"))
    except Exception as exc:
        check(f"import {name}", False, f"{type(exc).__name__}: {exc}")
names = {v for k, v in labels.items() if k.endswith(".file")}
left = []
for top in ("/tmp", "/root", "/opt", "/home", root, "/var/tmp"):
    for dirpath, dirnames, files in os.walk(top):
        left += [os.path.join(dirpath, f) for f in files if f in names or f.endswith(".run")]
left += [d for d in ("/tmp/ascend-pkgs",) if os.path.exists(d)]
check("no installer or download folder left", not left, ", ".join(left[:5]) or "none")
pip = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
check("pip check clean", pip.returncode == 0, (pip.stdout + pip.stderr).strip()[-300:])
print(json.dumps(checks))
'''

NPU_TENSOR = "import torch, torch_npu; x = torch.ones(2, 2).npu(); print((x + x).cpu())"

# As the runtime user: can it read the install and import the stack?
USER_PROBE = r'''
import json, os, sys, importlib
root, mods = sys.argv[1], sys.argv[2].split(",")
problems = []
for dirpath, dirnames, files in os.walk(root):
    for f in files:
        p = os.path.join(dirpath, f)
        if not os.access(p, os.R_OK) and not os.path.islink(p):
            problems.append(p)
for m in filter(None, mods):
    try:
        importlib.import_module(m)
    except Exception as exc:
        problems.append(f"import {m}: {exc}")
print(json.dumps(problems[:5]))
'''


def image_labels(info: dict, image: str) -> Dict[str, str]:
    """The labels of an inspected image; ConfigError when ascend-build did not build it."""
    labels = (info.get("Config") or {}).get("Labels") or {}
    if f"{LABEL_NS}.target" not in labels:
        raise ConfigError(f"{image} was not built by ascend-build (no {LABEL_NS}.target label)",
                          fix="verify an image made by `ascend-build build`")
    return labels


def _run_probe(engine: Engine, image: str, script: str, args: List[str], user: Optional[str] = None):
    cmd = [engine.binary, "run", "--rm", "-i", "--network", "none", "--entrypoint", "python3"]
    if user:
        cmd += ["--user", user]
    result = subprocess.run([*cmd, image, "-", *args], input=script, capture_output=True, text=True, timeout=300)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None if result.returncode == 0 else (result.stderr.strip() or "the probe did not run")


def verify(engine: Engine, image: str, host_root: Path = Path("/")) -> dict:
    labels = image_labels(engine.inspect(image), image)
    checks = _run_probe(engine, image, PROBE, [json.dumps(labels), LABEL_NS])
    if not isinstance(checks, list):
        checks = [{"name": "probe runs in the image", "ok": False, "detail": str(checks)}]
    user = labels.get(f"{LABEL_NS}.user")
    if user:
        modules = ",".join(m for m, slot in (("torch_npu", "torch-npu"), ("mindie_llm", "mindie")) if f"{LABEL_NS}.{slot}.version" in labels)
        problems = _run_probe(engine, image, USER_PROBE, [labels.get(f"{LABEL_NS}.install-path", "/usr/local/Ascend"), modules], user)
        ok = problems == []
        detail = "reads the install" + (f" and imports {modules}" if modules else "") if ok else str(problems)
        checks.append({"name": f"runtime user {user} can use the install", "ok": ok, "detail": detail})
    if cards(host_root):
        run = [engine.binary, "run", "--rm", *run_args(host_root)]
        npu = subprocess.run([*run, image, "npu-smi", "info"], capture_output=True, text=True, timeout=120)
        output = npu.stdout + npu.stderr
        checks.append({"name": "npu-smi info", "ok": npu.returncode == 0, "detail": npu_hint(output) or output[-300:]})
        if f"{LABEL_NS}.torch-npu.version" in labels:
            tensor = subprocess.run([*run, image, "python3", "-c", NPU_TENSOR], capture_output=True, text=True, timeout=300)
            checks.append({"name": "tensor on the NPU", "ok": tensor.returncode == 0, "detail": (tensor.stdout + tensor.stderr)[-300:]})
    else:
        checks.append({"name": "NPU checks", "ok": True, "detail": "skipped: no /dev/davinci* on this host"})
    return {"image": image, "ok": all(c["ok"] for c in checks), "checks": checks}
