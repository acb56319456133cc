"""A no-change rebuild answered without building: `build` with the same options as the last
successful build of the working directory, and nothing it read since changed, prints that build's
result after one engine call, before the CLI's libraries (typer, rich, pydantic, Jinja2, PyYAML)
are imported. Only the standard library here.

The last successful build leaves `.ascend-build/last-build.json`: its report and a digest of its
inputs taken before it read any (`inputs`): the normalised options, the environment it reads, the
working and current directory, the config's bytes, the stat keys (size, mtime_ns, ctime_ns,
inode, as the hash cache keys packages) of every entry of the working directory, packages/ and
install-scripts/, of the custom stage files and trusted roots, of the server token and the cache
epoch; the tool's version and installed files, the Python running it and its library folders;
the docker clients and daemon (probe_key) and the host's arch. When the digest matches, one
`image inspect` of the tag and the base image must still give the image the build made and the
base it used. Anything
else falls through to the normal build, silently: other options (--no-cache, --pull always,
--push, --verify, --rehash, several platforms, ...), a changed, missing or unreadable file,
another daemon or client, a removed or retagged image, or ASCEND_BUILD_FULL=1."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Sequence

from . import __version__, buildflags
from .engines.identity import probe_key
from .stdout import write_out
from .timings import PHASES
from .units import human_bytes

FORMAT = 1
STATE_DIR = ".ascend-build"                # workdir.STATE_DIR (that module is not imported here)
FINGERPRINT = "last-build.json"
TOKEN = "server-token"                     # workdir.TOKEN_NAME: part of the package URL
EPOCH = "cache-epoch"                      # workdir.EPOCH_NAME: part of the Dockerfile
BYPASS_ENV = "ASCEND_BUILD_FULL"
INPUT_FOLDERS = ("", "packages", "install-scripts")
ENV_PREFIXES = ("DOCKER_", "BUILDKIT_", "BUILDX_", "ASCEND_BUILD_")
ENV_NAMES = ("PATH", "HOME", "XDG_CACHE_HOME", "TMPDIR")

# `build` options the fast path can answer, by spelling, from the CLI's own table (buildflags.py);
# any other word falls through.
VALUES = {spelling: name for name, (spellings, _) in buildflags.VALUES.items() for spelling in spellings}
FLAGS = {spelling: name for name, spellings in buildflags.FLAGS.items() for spelling in spellings}
DEFAULTS = {name: default for name, (_, default) in buildflags.VALUES.items() if default is not None}
SHOWN_ONLY = ("json_out", "verbose", "timings", "no_wait")      # change what is printed, not what is built


def parse(argv: Sequence[str]) -> dict[str, str] | None:
    """The options of `build ...` with the defaults filled in, when each is one the fast path
    answers and is given once; else None."""
    if not argv or argv[0] != "build":
        return None
    options: dict[str, str] = {}
    words = iter(argv[1:])
    for word in words:
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in FLAGS and not eq:
            key, value = FLAGS[name], "1"
        elif name in VALUES:
            key = VALUES[name]
            value = value if eq else next(words, None)
            if value is None:
                return None
        else:
            return None
        if key in options:
            return None
        options[key] = value
    options = {**DEFAULTS, **options}
    if options["pull"] not in ("missing", "never") or "," in options.get("platform", ""):
        return None
    return options


def _stat_key(path: str) -> list | None:
    """A file's identity as the hash cache keys it (plus mode and device); a link's and its
    target's; a folder is only a folder. None when there is nothing at `path`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return ["folder"]
    key = [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path)
            key += [target.st_mode, target.st_size, target.st_mtime_ns, target.st_ctime_ns, target.st_ino, target.st_dev]
        except OSError:
            key.append(None)
    return key


def _entries(workdir: str, skip: str) -> dict[str, list | None]:
    """Every entry of the folders the catalog and the install-script overrides read (names
    starting with a dot are not inputs), except `skip` (the report this command writes)."""
    found: dict[str, list | None] = {}
    for folder in INPUT_FOLDERS:
        path = os.path.join(workdir, folder)
        try:
            names = os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            found[folder + "/"] = None
            continue
        for name in names:
            rel = f"{folder}/{name}" if folder else name
            if not name.startswith(".") and rel != skip:
                found[rel] = _stat_key(os.path.join(path, name))
    return found


def _tool() -> dict:
    """This tool's version and files, the interpreter and the folders its libraries come from
    (an upgrade or install there changes the folder)."""
    root = os.path.dirname(os.path.abspath(__file__))
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            files[os.path.relpath(os.path.join(folder, name), root)] = _stat_key(os.path.join(folder, name))
    python = os.path.realpath(sys.executable)           # python and python3 of one venv are one interpreter
    return {"version": __version__, "files": files, "python": [python, sys.version, _stat_key(python)],
            "path": {p: _folder_key(p) for p in sys.path[1:] if p}}


def _folder_key(path: str) -> list | None:
    """A folder's identity and last change of its entries (a file added, removed or renamed)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _config(workdir: str) -> str | None:
    try:
        with open(os.path.join(workdir, "ascend-build.yaml"), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


def _report_rel(workdir: str, report: str | None) -> str:
    """The report's name when it is written into the working directory itself (an output)."""
    if report and os.path.realpath(os.path.dirname(os.path.abspath(report))) == workdir:
        return os.path.basename(report)
    return ""


def inputs(options: dict[str, str], extra: Sequence[str] = ()) -> dict | None:
    """Everything the build's result depends on besides the engine's images (see the module's
    text); None when the engine is not a local docker daemon (no probe key)."""
    engine = probe_key(options["engine"], options.get("docker_bin"))
    if engine is None:
        return None
    workdir = os.path.realpath(options["workdir"])
    report = options.get("report")
    built = {k: v for k, v in options.items() if k not in SHOWN_ONLY}
    built.update(workdir=workdir, report=os.path.realpath(report) if report else None)
    return {
        "format": FORMAT,
        "options": built,
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k != BYPASS_ENV
                and (k.startswith(ENV_PREFIXES) or k in ENV_NAMES or k.lower().endswith("_proxy"))},
        "host": [os.uname().machine, sys.platform],
        "engine": engine,
        "tool": _tool(),
        "config": _config(workdir),
        "files": _entries(workdir, _report_rel(workdir, report)),
        "token": _stat_key(os.path.join(workdir, STATE_DIR, TOKEN)),
        "epoch": _stat_key(os.path.join(workdir, STATE_DIR, EPOCH)),
        "extra": {rel: _stat_key(os.path.join(workdir, rel)) for rel in extra},
    }


def digest(state: dict) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _fingerprint_path(workdir: str) -> str:
    return os.path.join(workdir, STATE_DIR, FINGERPRINT)


class Pending:
    """A normal build's inputs, taken before it reads any; remembered when it succeeds."""

    def __init__(self, options: dict[str, str], state: dict):
        self.options, self.state = options, state
        self.extra: list[str] = []

    def add_files(self, rels: Sequence[str]) -> None:
        """Files the config names (custom stage files, trusted roots): call before the build reads them."""
        self.extra = sorted(set(rels))
        self.state["extra"] = {rel: _stat_key(os.path.join(self.state["options"]["workdir"], rel)) for rel in self.extra}


def begin(workdir: str, argv: Sequence[str]) -> Pending | None:
    """The start of a normal build: the last fingerprint is dropped (only a successful build
    writes one); this build's inputs when its options are ones the fast path answers."""
    try:
        os.unlink(_fingerprint_path(workdir))
    except OSError:
        pass
    options = parse(argv)
    if options is None:
        return None
    from .errors import AscendBuildError
    from .workdir import State

    try:
        State.of(workdir).token()          # made now when missing (the build would make it): an input
        state = inputs(options)
    except (AscendBuildError, OSError):
        return None
    return Pending(options, state) if state else None


def remember(pending: Pending | None, report: dict, settings: Sequence, port: int) -> None:
    """After a successful build: keep its inputs' digest and its report, when an unchanged
    rebuild would make the same image: one native platform (no emulation), a docker engine,
    nothing pushed (the package URL is never a cache key: any port rebuilds the same image)."""
    if pending is None or len(settings) != 1 or report.get("pushed"):
        return
    one = settings[0]
    if one.platform or one.engine.name not in ("docker", "buildkit"):
        return
    data = {"format": FORMAT, "digest": digest(pending.state), "extra": pending.extra, "engine": one.engine.binary,
            "report": report}
    try:
        _write(_fingerprint_path(pending.state["options"]["workdir"]), json.dumps(data))
    except OSError:
        pass                               # no fast path next time: the normal build runs


def _write(path: str, text: str) -> None:
    """Atomically (a temporary file renamed into place); OSError when it cannot be written."""
    temp = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(temp, path)
    finally:
        if os.path.lexists(temp):
            os.unlink(temp)


def _images(binary: str, tag: str, base: str) -> list[list[str]] | None:
    """[id, size] of the tag and of the base image, in one engine call; None when one is missing."""
    try:
        result = subprocess.run([binary, "image", "inspect", "--format", "{{.Id}} {{.Size}}", tag, base],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    rows = [line.split() for line in result.stdout.splitlines()]
    if result.returncode != 0 or len(rows) != 2 or any(len(r) != 2 or not r[1].isdigit() for r in rows):
        return None
    return rows


def check(options: dict[str, str]) -> dict | None:
    """The report of the last build, refreshed, when it still answers these options; else None."""
    started = time.perf_counter()
    with open(_fingerprint_path(os.path.realpath(options["workdir"]))) as f:
        last = json.load(f)
    if not isinstance(last, dict) or last.get("format") != FORMAT:
        return None
    state = inputs(options, last["extra"])
    if state is None or digest(state) != last["digest"]:
        return None
    report = last["report"]
    compared = time.perf_counter()
    images = _images(last["engine"], report["image"], report["base_image"])
    if images is None or images[0][0] != report["image_id"] or images[1][0] != report["base_image_id"]:
        return None
    inspected = time.perf_counter()
    seconds = {"config": compared - started, "engine": inspected - compared}
    return {**report, "size_bytes": int(images[0][1]), "base_size_bytes": int(images[1][1]),
            "stages": [{"name": s["name"], "status": "cached", "seconds": 0.0} for s in report["stages"]],
            "served": [], "duration_seconds": round(inspected - started, 2),
            "timings": {name: round(seconds.get(name, 0.0), 3) for name in PHASES}}


def summary(report: dict, timings: bool) -> str:
    """What a cached build prints (its summary table, as plain lines)."""
    width = max(len(s["name"]) for s in report["stages"])
    lines = ["no change since the last build (its inputs, tag and base image are the same): nothing built;"
             f" --no-cache or {BYPASS_ENV}=1 builds again",
             f"{report['image']}  ({human_bytes(report['size_bytes'])}, base {human_bytes(report['base_size_bytes'])})"
             f"  {report['image_id']}"]
    lines += [f"  {s['name']:<{width}}  {s['status']}  {s['seconds']:.1f}" for s in report["stages"]]
    lines.append(f"{report['engine']} engine, {report['delivery']} delivery, {human_bytes(report['context_bytes'])} context, "
                 f"{report['duration_seconds']:.1f} s; log: {report['log']}")
    if timings:
        lines.append("where the time went: " + ", ".join(f"{k} {v:.3f}" for k, v in report["timings"].items())
                     + f"; total {sum(report['timings'].values()):.3f}")
    return "\n".join(lines) + "\n"


def answer(argv: Sequence[str]) -> bool:
    """Answer `build ...` without building when nothing changed (report written, result printed);
    False when the normal build must run."""
    options = parse(argv) if not os.environ.get(BYPASS_ENV) else None
    if options is None:
        return False
    try:
        report = check(options)
        if report is None:
            return False
        text = summary(report, options.get("timings") == "1")
        if options.get("report"):
            _write(options["report"], json.dumps(report, indent=2) + "\n")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError):
        return False
    sys.stderr.write(text)
    if options.get("json_out"):
        write_out(json.dumps(report, indent=2, default=str) + "\n")
    return True
