"""Native install (issue 24): in a build for another arch (QEMU), the wheels of the stages whose
script pip-installs them (cann's tools, pta, vllm, mindspore: `Component.native_wheels`) are installed by
the build host's own pip and CPU in a helper stage, `<stage>-native`, FROM an image of the host's
platform with the image's Python X.Y; the stage COPYs the installed tree and runs the rest of its
script (installers, checks, `pip check`) under emulation.

- The helper image: `native_image:` in ascend-build.yaml, else `base_images:`' entry for the
  host's arch, else the base image's name without its arch word (NAME:bookworm for
  NAME:bookworm-arm64), else python:X.Y-slim or python:X.Y; the first in the store for the host's
  arch whose python3 is the image's X.Y and has pip. None: a note, and the emulated install.
- Where the files go is the image's own pip's answer (native_stage.py scheme): the base image's,
  asked once per image id and cached (image_scheme) when the base stage installs no OS package (its
  python3 and pip are then the base image's), else asked under emulation during the build (stage
  `native-scheme`, FROM base). The helper's first step runs `pip install --target --platform ...
  --no-deps --no-compile`, then (native_stage.py guess) puts the files under /ab-staged where the
  helper's own pip would (the image's answer too when the helper is the base image's twin), rewrites
  RECORD as that pip writes it, points script shebangs at the image's python3 and compiles the byte
  code as pip does (same invalidation mode; co_filename the final path; on every CPU); then (settle: in
  the same step when the base image's answer is known, else in its next step) places them again where the
  image's answer differs.
- A helper starts when the one before it is done (it COPYs that one's guess.json): BuildKit runs
  every stage it can at once, and the first helper, which the emulated stages wait for, shared
  the CPUs with the later ones (the benchmark's cann helper: 6.9 s, alone 5.3 s); the later ones
  run while the stages before them install under QEMU. (Compiling the byte code in a stage of its
  own, copied in after the installers of the stages whose script imports nothing it installs, saved
  nothing measurable on the benchmark's content and cost the real MindSpore stack 5 s: the compile
  shared the CPUs with those installers, and every later helper waited for it.)
- The stage the helper serves checks what it placed with pip check's rule (native_stage.py
  check, without pip's start-up): the host's python3 from stage native-tools, on the sys.path,
  pip and marker environment the image's python3 reports (probe, 0.5 s under QEMU); without
  native-tools, the image's python3 (1-1.5 s).
- A set_env.sh capture's build runs the helpers of the stages after the captured one too
  (render.capture_prefix), beside its emulated stages.
- The installers' byte work (sha256sum, tar, gzip, sed, cp... while a .run installs; wget's downloads)
  runs on the host's CPU too: stage `native-tools` copies the host image's coreutils, diffutils,
  findutils, grep, gzip, sed, tar and wget programs (those it has) with their libraries and loader
  (native_stage.py tools), and its python3 with its standard library; each
  stage with a .run, .zip or .tar.gz, or wheels (its image's pip installs them, or the host's python3
  checks those a helper installed), mounts them (the
  libraries and loader where the host's loader looks: TOOL_MOUNTS), and run-stage.sh puts them
  first on PATH when the image has the very same versions of those packages (dpkg-query; else
  they stay unused). uname, arch, nproc, the shells,
  python3 (but for the check) and the installers' own programs stay the image's, under emulation. A Debian-family
  image built on an x86_64 host only; a RUN in the last stage removes the mount points BuildKit leaves
  (once: the stages before keep them, empty, 0.35 s each under QEMU).
- A stage with the tools whose own script pip-installs (`ab_pip`) or whose installers do (`installer_pip`) and
  no helper serves (mindie: its .run pip-installs its bundled wheels; then the ATB tarball's atb_llm wheel), gets
  native-pip.sh and the image's scheme (COPY, as a helper's) (`single_wheels`): `ab_pip WHEEL` of one wheel runs
  the image's own pip on the host's python3 (native-stage.py install: --target, the image's Python and tags,
  --no-deps), then places the files; the image's pip does it when that wheel requires more than the image has,
  is installed already, or pip is configured. With `installer_pip`, python3 is a shim while an installer runs:
  its `python3 -m pip install WHEEL...` goes the same way (native-stage.py pip), all else to the image's python3.
- The helper's RUN names each wheel with its sha256 (as the stage's own RUN does), so a changed
  wheel rebuilds the helper and the COPY of its tree (content-addressed) rebuilds the stage.
- Off: `native_install: off` or ASCEND_BUILD_NATIVE_INSTALL=off; never with the classic builder,
  bake, export, copy delivery, an index URL, an install-scripts/ override or a custom stage before."""
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .catalog.model import Package
from .catalog.pythons import read_image
from .catalog.requirements import parsed_lines
from .catalog.wheelmatch import wheel_name
from .components import render_script
from .components.base import installs_test
from .components.registry import find
from .errors import EngineError
from .usercache import UserCache
from .contract import NATIVE_SUFFIX, NATIVE_TOOLS as TOOLS, SCHEME_STAGE, TOOL_DIR, TOOLS_STAGE
from .platforms import DEFAULT_GLIBC, PLATFORMS, host_arch, normalise_arch, platform_tags

ENV = "ASCEND_BUILD_NATIVE_INSTALL"
STAGING = "/ab-staged"
HOME = "/tmp/ab-native"              # where the helper's pip installs, before native-stage.py places the files
SCHEME_FILE = "/ab-scheme.json"
SCHEME_CONTEXT = "scripts/native/scheme.json"     # image_scheme's answer, in the build context
SCHEMES = UserCache("schemes", most=32)
INSTALLS = 3                              # image_scheme's probe: the base stage installs OS packages
SCHEME_PATHS = ("purelib", "platlib", "scripts", "data", "headers", "executable")
SCRIPT = "scripts/native-stage.py"
GUESS = f"{TOOL_DIR}/guess.json"         # where the helper's pip puts files (native-stage.py guess)
CHECKER = f"{TOOL_DIR}/native-stage.py"   # in a stage a helper served: its `check` runs pip check's rule
STAGE_SCHEME = f"{TOOL_DIR}/scheme.json"   # in a single_wheels stage: where the image's pip puts files
LIB_LINE = f". {TOOL_DIR}/lib.sh\n"
AB_PIP = re.compile(r"^\s*ab_pip\s", re.M)            # a script line that pip-installs
# options of a requirements file that change nothing when every wheel is given by path
HARMLESS = ("-f", "--find-links", "--no-index", "-i", "--index-url", "--extra-index-url", "--trusted-host",
            "--prefer-binary", "--only-binary", "--pre")
# host arch -> (the tools' sub-folder, where the image gets it): the loader where the programs' PT_INTERP
# names it, their libraries in the loader's system search path (an image of another arch has neither)
TOOL_MOUNTS = {"x86_64": (("loader", "/lib64"), ("lib", "/usr/lib/x86_64-linux-gnu"))}
ARCHIVES = ("run", "zip", "tar.gz")       # what a stage unpacks: the stages that mount the tools
ARCH_WORDS = {"aarch64": ("arm64v8", "aarch64", "arm64"), "x86_64": ("x86_64", "x86-64", "amd64")}


@dataclass(frozen=True)
class NativeInstall:
    """What a build installs natively: the helper image, the FROM --platform value, the image's
    Python X.Y and platform tags, per stage the wheels (in the script's order), and the stages
    that mount the host's byte tools."""

    image: str
    platform: str
    python: str
    tags: Tuple[str, ...]
    stages: Tuple[Tuple[str, Tuple[Package, ...]], ...]
    tools: Tuple[str, ...] = ()
    tool_mounts: Tuple[Tuple[str, str], ...] = ()      # (folder in stage native-tools, where the stage mounts it)
    scheme: str = ""              # the base image's pip's scheme (JSON; image_scheme), else stage native-scheme asks
    single_wheels: Tuple[str, ...] = ()     # stages whose `ab_pip WHEEL` runs the image's pip on this CPU (native-pip.sh)

    def wheels(self, stage: str) -> Tuple[Package, ...]:
        return dict(self.stages).get(stage, ())

    @staticmethod
    def helper(stage: str) -> str:
        return stage + NATIVE_SUFFIX


def wanted(spec) -> bool:
    value = os.environ.get(ENV, "").strip().lower() or spec.native_install
    return value not in ("off", "0", "no", "false")


def _requirements_plain(pkg: Package) -> bool:
    """Every line a requirement without a URL, or an option that changes nothing here."""
    try:
        text = Path(pkg.path).read_text(errors="replace")
    except OSError:
        return False
    for _number, line, req in parsed_lines(text):
        if line.startswith("-"):
            if line.split("=", 1)[0].split()[0] not in HARMLESS:
                return False
        elif isinstance(req, InvalidRequirement) or (isinstance(req, Requirement) and req.url):
            return False
    return True


def stage_wheels(plan, overrides: Dict[str, str], present: Sequence[str]) -> Tuple[Dict[str, Tuple[Package, ...]], List[str]]:
    """stage -> its wheels to install natively, and why others are not."""
    chosen: Dict[str, Tuple[Package, ...]] = {}
    why: List[str] = []
    before = {canonicalize_name(n) for n in present}
    builtin = True
    for stage in plan.stages:
        component = find(stage.name)
        builtin = builtin and component is not None
        wheels = tuple(p for p in stage.files if p.format == "wheel" and p not in stage.build_only)
        names = [wheel_name(p)[0] or None for p in wheels]
        if component is not None and component.native_wheels and wheels:
            reason = (f"install-scripts/install_{stage.name}.sh replaces its script" if stage.name in overrides
                      else "a custom stage comes before it" if not builtin
                      else "its requirements files hold more than requirements" if not all(
                          _requirements_plain(p) for p in stage.files if p.format == "txt")
                      else "one of its wheels is in the image already (pip would replace it)" if any(
                          n is None or n in before for n in names)
                      else "" if LIB_LINE in stage.script else "its script does not source lib.sh")
            if reason:
                why.append(f"stage {stage.name}: {reason}")
            else:
                chosen[stage.name] = wheels
        before.update(n for n in names if n)
    return chosen, why


def byte_tools(plan, host: str, native: Dict[str, Tuple[Package, ...]]) -> Tuple[Tuple[str, ...], Tuple[Tuple[str, str], ...]]:
    """The stages that mount the host's byte tools, and the mounts: those that unpack installers,
    check wheels the image's pip installs or check the wheels installed natively (`native`, by the
    host's python3); a Debian-family image on an x86_64 host only (see the module's doc)."""
    if host not in TOOL_MOUNTS or plan.os_family != "debian":
        return (), ()
    stages = tuple(s.name for s in plan.stages if s.name in native or any(
        p.format in ARCHIVES or (p.format == "wheel" and p not in native.get(s.name, ())) for p in s.files))
    mounts = ((TOOLS, TOOLS), *((f"{TOOLS}/{sub}", there) for sub, there in TOOL_MOUNTS[host]))
    return stages, (mounts if stages else ())


def candidates(spec, base_image: str, host: str, target: str, python: str) -> List[str]:
    """Helper images to try, best first (see the module's doc)."""
    if spec.native_image:
        return [spec.native_image]
    found = [spec.base_images[host]] if host in spec.base_images else []
    last = base_image.rsplit("/", 1)[-1]
    repo, tag = (base_image.rsplit(":", 1) if ":" in last else (base_image, ""))
    for word in ARCH_WORDS.get(target, ()):
        found += [f"{repo}:{tag.replace(old, '', 1)}" for sep in "-_." for old in (sep + word, word + sep) if old in tag]
    hub = {"aarch64": "arm64v8", "x86_64": "amd64"}
    if re.search(rf"(^|/){hub.get(target)}/", repo):
        found.append(re.sub(rf"(^|/){hub.get(target)}/", rf"\g<1>{hub[host]}/", repo, count=1) + (f":{tag}" if tag else ""))
    found += [f"python:{python}-slim", f"python:{python}"]
    return list(dict.fromkeys(c for c in found if c != base_image))


def usable(engine, image: str, host: str, python: str) -> str:
    """Why `image` cannot be the helper ("" when it can)."""
    found = engine.find_image(image)
    if found is None:
        return f"{image} is not in {engine.binary}'s store"
    if normalise_arch(found.get("Architecture")) not in (None, host):
        return f"{image} is for {normalise_arch(found.get('Architecture'))}"
    answer, why = read_image(engine, image)       # this host's arch: no --platform (podman may run it with buildah)
    if answer is None:
        return why.replace("the base image", "the image")
    version = ".".join(str(answer.get("version") or "").split(".")[:2])
    if version != python:
        return f"{image} has Python {version or 'none'}, the image {python}"
    if "pip" not in {canonicalize_name(n) for n in answer.get("packages", {})}:
        return f"{image} has no pip"
    return ""


def decide(plan, engine, say: Callable[[str], None], overrides: Dict[str, str],
           present: Sequence[str] = (), glibc: Optional[Tuple[int, int]] = None) -> Optional[NativeInstall]:
    """The native install of this build, or None (saying why when it could have helped)."""
    settings = plan.settings
    host = host_arch()
    if settings.platform is None or engine is None or not getattr(engine, "native_stages", False) or host is None:
        return None
    if not wanted(settings.spec):
        say(f"native install: off ({ENV} or native_install: off): every stage installs under QEMU")
        return None
    stages, why = stage_wheels(plan, overrides, present)
    for line in why:
        say(f"native install: {line}, so it installs under QEMU")
    tools, mounts = byte_tools(plan, host, stages)
    if not stages and not tools:
        return None
    python = plan.selection.python
    problem = (f"{settings.delivery.name} delivery" if not settings.delivery.native_helpers
               else "pip_index_url is set" if settings.spec.pip_index_url
               else "the image's Python is unknown" if not python else "")
    if problem:
        say(f"native install: not used ({problem}): {', '.join(stages or tools)} install under QEMU")
        return None
    tried = []
    for image in candidates(settings.spec, settings.base_image, host, settings.arch, python):
        reason = usable(engine, image, host, python)
        if not reason:
            platform = "$BUILDPLATFORM" if getattr(engine, "build_platform_arg", False) else PLATFORMS[host]
            tags = platform_tags(settings.arch, glibc or DEFAULT_GLIBC)
            if stages:
                say(f"native install: the wheels of {', '.join(stages)} install on this {host} CPU in {image} "
                    f"(Python {python}), then are copied into the {settings.arch} image")
            if tools:
                say(f"native install: {', '.join(tools)} use {image}'s byte tools (tar, gzip, sha256sum...) on this "
                    f"{host} CPU where the image has the same versions" + (", and its python3 for pip check's rule" if stages else ""))
            singles = tuple(s.name for s in plan.stages if s.name in tools and s.name not in stages and s.name not in overrides
                            and find(s.name) is not None and LIB_LINE in s.script
                            and (AB_PIP.search(s.script) or find(s.name).installer_pip))
            return NativeInstall(image, platform, python, tags, tuple(stages.items()), tools, mounts, single_wheels=singles)
        tried.append(reason)
    say(f"native install: no {PLATFORMS[host]} image with Python {python} and pip ({'; '.join(tried)}): "
        f"{', '.join(stages or tools)} install under QEMU; set `native_image: IMAGE` in ascend-build.yaml to use one")
    return None


def image_scheme(plan, engine, say: Callable[[str], None]) -> str:
    """native-stage.py scheme's answer (JSON) from the base image's own pip, asked once per image id
    (cached) when the base stage installs no OS package, so that its python3 and pip are the base
    image's; "" when it installs some or the image did not answer: stage native-scheme asks then."""
    base = [s for s in plan.stages if s.name == "base"]
    test = installs_test(base[0].setup) if base else None
    image, found = plan.settings.base_image, engine.find_image(plan.settings.base_image)
    if test is None or not found or not found.get("Id"):
        return ""
    from . import native_stage

    script = f"if {test}; then exit {INSTALLS}; fi; exec python3 -c {shlex.quote(Path(native_stage.__file__).read_text())} scheme"
    key = f"{found['Id']} {hashlib.sha256(script.encode()).hexdigest()[:16]}"
    cached = SCHEMES.get(key)
    if cached == "" or (isinstance(cached, str) and _scheme_json(cached)):
        return cached
    say(f"native install: asking the pip of {image} where it puts files (once per image)")
    try:
        result = engine.run_container(image, ["-c", script], entrypoint="sh", network="none", timeout=120, purpose="probe",
                                      flags=["--platform", plan.settings.platform], step=f"pip's scheme in base image {image}")
    except EngineError:
        return ""
    answer = _scheme_json((result.stdout.strip().splitlines() or [""])[-1]) if result.returncode == 0 else ""
    if not answer and result.returncode != INSTALLS:
        return ""
    SCHEMES.remember(key, answer)
    return answer


def _scheme_json(text: str) -> str:
    """`text` as native-stage.py scheme writes it (JSON, sorted keys): absolute paths, the executable, X.Y,
    the folders' [mode, uid, gid]; "" when it is not one (the helper's settle would trip on it)."""
    try:
        found = json.loads(text)
    except ValueError:
        return ""
    paths = [found.get(k) for k in SCHEME_PATHS] if isinstance(found, dict) else [None]
    dirs = found.get("dirs") if isinstance(found, dict) else None
    if not (all(isinstance(p, str) and p.startswith("/") for p in paths) and isinstance(dirs, dict)
            and re.fullmatch(r"\d+\.\d+", str(found.get("version")))
            and all(isinstance(v, list) and len(v) == 3 and all(type(n) is int for n in v) for v in dirs.values())):
        return ""
    return json.dumps(found, sort_keys=True)


def for_build(plan, engine, say: Callable[[str], None]) -> Optional[NativeInstall]:
    """decide() with what it reads: the install-scripts/ overrides, the base image's Python and pip's scheme."""
    if plan.settings.platform is None or not getattr(engine, "native_stages", False):
        return None
    from .plan import read_overrides
    from .settings import image_python

    python = image_python(plan.settings, engine)
    native = decide(plan, engine, say, read_overrides(plan.settings.workdir), list(python.packages), python.glibc)
    if not native or not (native.stages or native.single_wheels):
        return native
    if native.single_wheels:
        say(f"native install: in {', '.join(native.single_wheels)}, a wheel installed by itself (ATB's atb_llm, an "
            f"installer's bundled wheels) is installed by the image's pip run on this {host_arch()} CPU when the image "
            f"has what it requires")
    return replace(native, scheme=image_scheme(plan, engine, say))


# -- what the Dockerfile and the context get ----------------------------------------------------
def helper_views(plan, views: List[dict]) -> List[dict]:
    """The Dockerfile's stage views with the scheme stage and each helper stage before the stage
    it serves, which COPYs the staged tree first and delivers only its other files."""
    native: Optional[NativeInstall] = getattr(plan, "native", None)
    if native is None:
        return views
    out: List[dict] = []
    scheme = SCHEME_CONTEXT if native.scheme else f"--from={SCHEME_STAGE} {SCHEME_FILE}"

    def ask_scheme():
        if not native.scheme and not any(v["name"] == SCHEME_STAGE for v in out):
            out.append({"name": SCHEME_STAGE, "helper": "scheme", "parent": "base", "script": SCRIPT, "file": SCHEME_FILE})

    for view in views:
        wheels = native.wheels(view["name"])
        if wheels and not view.get("helper"):
            ask_scheme()
            mount = plan.delivery.mount(view["name"], True)
            before = [v["name"] for v in out if v.get("helper") == "install"][-1:]
            out.append({"name": native.helper(view["name"]), "helper": "install", "stage": view["name"], "after": before,
                        "image": native.image, "platform": native.platform, "mount": mount,
                        "files": [(p.name, p.sha256) for p in wheels], "script": SCRIPT, "home": HOME, "staging": STAGING,
                        "scheme": scheme, "scheme_known": bool(native.scheme), "guess": GUESS})
            names = {p.name for p in wheels}
            view = dict(view, files=[f for f in view["files"] if f[0] not in names],
                        copies=[(f"--from={native.helper(view['name'])} {STAGING}/", "/"), (SCRIPT, CHECKER),
                                *view["copies"]])
        if view["name"] in native.tools and not view.get("helper"):
            if not any(v["name"] == TOOLS_STAGE for v in out):
                out.append({"name": TOOLS_STAGE, "helper": "tools", "image": native.image, "platform": native.platform,
                            "script": SCRIPT, "dir": TOOLS})
            if view["name"] in native.single_wheels:
                ask_scheme()
                view = dict(view, copies=[(SCRIPT, CHECKER), (scheme, STAGE_SCHEME), *view["copies"]])
            view = dict(view, mount="".join(f"--mount=type=bind,from={TOOLS_STAGE},source={here},target={there} \\\n    "
                                            for here, there in native.tool_mounts) + view["mount"])
        out.append(view)
    if any(v["name"] in native.tools for v in out):       # the mount points BuildKit leaves: removed once, at the end
        last = [i for i, v in enumerate(out) if not v.get("helper")][-1]
        out[last] = dict(out[last], unstub=[there for _, there in native.tool_mounts])
    return out


def context_files(plan, scripts: Dict[str, str]) -> Dict[str, str]:
    """The helper stages' scripts, the served stages' scripts (as `scripts` has them) with
    ab_pip taking only the wheels built in the image from sdists (the others are in place) and
    `pip check` of what was placed, and the single_wheels stages' with native-pip.sh's ab_pip."""
    native: Optional[NativeInstall] = getattr(plan, "native", None)
    if native is None:
        return {}
    from . import native_stage

    files = {SCRIPT: Path(native_stage.__file__).read_text(), **({SCHEME_CONTEXT: native.scheme} if native.scheme else {})}
    host_python = f"{TOOLS}/python/bin/python{native.python}"      # native-tools' copy of the helper's python3
    base_env = plan.stage("base").env if any(s.name == "base" for s in plan.stages) else {}
    for stage, wheels in native.stages:
        script = scripts.get(f"scripts/install_{stage}.sh", plan.stage(stage).script)
        built = [p for p in plan.stage(stage).files if p.format == "sdist"]       # installed by the image's pip
        names = sorted({wheel_name(p)[0] for p in (*wheels, *built)} - {""})
        files[f"scripts/native/install_{stage}.sh"] = render_script(
            "native-install.sh.j2", stage=stage, python=native.python, abi="cp" + native.python.replace(".", ""),
            tags=native.tags, wheels=[p.name for p in wheels], staging=STAGING, home=HOME, guess=GUESS, image=native.image,
            scheme=STAGE_SCHEME if native.scheme else "",
            pip_env=[f"{k}={v}" for k, v in base_env.items() if k.startswith("PIP_")])
        files[f"scripts/install_{stage}.sh"] = script.replace(LIB_LINE, LIB_LINE + render_script(
            "native-placed.sh.j2", helper=native.helper(stage), names=names, checker=CHECKER,
            host_python=host_python if stage in native.tools else ""), 1)
    for stage in native.single_wheels:
        script = scripts.get(f"scripts/install_{stage}.sh", plan.stage(stage).script)
        files[f"scripts/install_{stage}.sh"] = script.replace(LIB_LINE, LIB_LINE + render_script(
            "native-pip.sh.j2", home=HOME, checker=CHECKER, host_python=host_python, shim=find(stage).installer_pip,
            scheme=STAGE_SCHEME, tags=native.tags, unchecked=native_stage.UNCHECKED), 1)
    return files

