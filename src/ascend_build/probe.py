"""The probe `verify` sends into an image: `python3 - checks LABELS PROBES NS PKG_DIR` prints one
JSON list of checks, `python3 - user ROOT MODULES` (as the runtime user) a JSON list of problems.
Standard library only, and nothing is sourced first: it sees what a plain `docker run IMAGE
python3 ...` sees. Each probe comes from a component (kinds: file, info-version, env-dir,
link-version, import, dist); paths are relative to the install path."""
import fnmatch
import glob
import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys


def _check(name, ok, detail=""):
    return {"name": name, "ok": bool(ok), "detail": detail}


def _base(version):
    return (version or "").split("+")[0]


def _installed_version(pattern):
    found = ""
    for info in glob.glob(pattern):
        with open(info) as lines:
            for line in lines:
                if line.startswith("version="):
                    found = line.split("=", 1)[1].strip()
    return found


def _dist_version(name):
    """The installed version of the distribution `name` (or with - for _), "" when there is none."""
    for name in (name, name.replace("_", "-")):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def _import(module, want):
    try:
        got = getattr(importlib.import_module(module), "__version__", "") or _dist_version(module)   # vllm_ascend has none
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return _check(f"import {module}", False, f"{type(exc).__name__}: {exc}")
    ok = want is None or _base(got) == _base(want)
    return _check(f"import {module}", ok, f"{module} {got}" + ("" if ok else f", label {want}"))


def run_probe(probe, version, root):
    """One check of one probe; `version` is the label's version of the probe's slot."""
    kind, name = probe["kind"], probe.get("name", "")
    if kind == "file":
        path = os.path.join(root, probe["path"])
        return _check(name, os.path.isfile(path), path)
    if kind == "info-version":
        found = _installed_version(os.path.join(root, probe["glob"]))
        return _check(name, found == version, f"installed {found or 'none'}, label {version}")
    if kind == "env-dir":
        value = os.environ.get(probe["var"], "")
        return _check(name, value and os.path.isdir(value), f"{probe['var']}=" + (value or "(unset)"))
    if kind == "link-version":
        found = os.path.basename(os.path.realpath(os.path.join(root, probe["path"])))
        return _check(name, found == version, f"installed {found}, label {version}")
    if kind == "import":
        return _import(probe["module"], version if probe.get("versioned") else None)
    if kind == "dist":
        found = _dist_version(probe["dist"])
        return _check(name, found and _base(found) == _base(version), f"{probe['dist']} {found or 'not installed'}, label {version}")
    return _check(name or kind, False, f"unknown probe kind {kind!r}")


SCRATCH = ("/tmp", "/root", "/opt", "/home", "/var/tmp")


def leftovers(labels, root, pkg_dir, scratch=SCRATCH):
    """Installers or package files left under the scratch folders or the install path, and files
    left in the download folder."""
    names = {v for k, v in labels.items() if k.endswith(".file")}
    left = []
    for top in (*scratch, root):
        for dirpath, _dirnames, files in os.walk(top):
            left += [os.path.join(dirpath, f) for f in files if f in names or f.endswith(".run")]
    # the download folder: gone, or (BuildKit's RUN --mount) only the empty mount points stay
    left += [os.path.join(d, f) for d, _dirs, files in os.walk(pkg_dir) for f in files]
    return _check("no installer or download folder left", not left, ", ".join(left[:5]) or "none")


def pip_check():
    pip = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    return _check("pip check clean", pip.returncode == 0, (pip.stdout + pip.stderr).strip()[-300:])


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def never_installed(never):
    """No distribution the image must not have ({"never": patterns, "beside": {name: patterns}}:
    CUDA builds, what a stack replaces beside it)."""
    names = {_canonical(d.metadata["Name"]) for d in importlib.metadata.distributions() if d.metadata["Name"]}
    patterns = list(never.get("never", [])) + [p for n, more in never.get("beside", {}).items()
                                                if _canonical(n) in names for p in more]
    found = sorted(n for n in names if any(fnmatch.fnmatchcase(n, _canonical(p)) for p in patterns))
    return _check("no CUDA distribution or replaced package", not found, ", ".join(found) or "none")


def checks(labels, probes, ns, pkg_dir, never="{}"):
    root = labels.get(ns + ".install-path", "/usr/local/Ascend")
    clean = pip_check()         # before the imports: no fork once torch's threads run (it can hang under QEMU)
    found = [run_probe(p, labels.get(f"{ns}.{p['slot']}.version"), root) for p in probes]
    return found + [leftovers(labels, root, pkg_dir), clean, never_installed(json.loads(never))]


def user_problems(root, modules):
    """What the runtime user cannot read under `root`, or import."""
    problems = []
    for dirpath, _dirnames, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            if not os.access(path, os.R_OK) and not os.path.islink(path):
                problems.append(path)
    for module in filter(None, modules):
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is the finding
            problems.append(f"import {module}: {exc}")
    return problems[:5]


def main(argv):
    if argv[0] == "user":
        return user_problems(argv[1], argv[2].split(","))
    return checks(json.loads(argv[1]), json.loads(argv[2]), *argv[3:6])


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
