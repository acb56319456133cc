"""Runs INSIDE the build (standard library only, Python 3.6+), never imported by the tool: the
in-image half of the native install (native_install.py). Shipped as scripts/native-stage.py.

`scheme`: run by the image's own python3 (under emulation, once): where its pip puts a
distribution's files (purelib, platlib, scripts, data, headers), its sys.executable (the shebang
pip writes) and the owner and mode of those folders and their parents, as JSON.

`place` (guess, settle): run by the build host's python3 of the same X.Y after
`pip install --target HOME --no-compile` of wheels for the target: moves (guess: links) every
file each RECORD lists to STAGING + the path the image's pip would have used, rewrites RECORD as that pip
writes it (paths relative to purelib or platlib as the wheel's root says, the .pyc files it compiles,
sorted), points the scripts'
shebangs at the image's python3 (RECORD hashes follow), compiles each .py as pip does (same
invalidation mode, co_filename = the final path; on every CPU), and gives the folders the image
already has their owner and mode (COPY applies the staged folders' to the image's).

`guess HOME STAGING OUT`, then `settle HOME STAGING OUT SCHEME`: `place` without waiting for the
image's answer: first (hard links, HOME kept) where this python3's pip puts files (written to OUT: the
image's answer too when the helper image is the base image's twin for the host's CPU), then, once
the image's SCHEME is there, placed again from HOME only where the two differ.

`tools OUT`: run by the build host's python3 in stage native-tools: copies the programs of
TOOL_PACKAGES it has (ELF files only, not those in NOT_NATIVE) to OUT/bin, the libraries they load to
OUT/lib, their loader to OUT/loader, the package names to OUT/packages, `dpkg-query -W` of them
to OUT/versions, this python3 (its program, and its standard library without the tests, no site-packages)
to OUT/python and, last, dpkg-query to OUT/ (none where something failed: no dpkg-query or ldd). A stage under emulation mounts them (run-stage.sh uses them only when the image has the
same versions of those packages).

`check NAME...`: run in the stage the helper served: pip check's rule for those distributions only
(each requirement whose marker holds, with no extra, installed in a version its specifier takes,
pre-releases included; the first distribution of a name on sys.path counts), in pip check's words,
without pip's start-up (2 s under QEMU). By the image's own python3 (importlib.metadata and the
packaging pip vendors: 1.3 s under QEMU), or, `check --image IMAGE.json NAME...`, by the build host's
python3 (`tools` copies it, with its standard library, to OUT/python) on what `probe` wrote: the
image's sys.path, its pip's folder (whose packaging it imports) and its marker environment (0.5 s under
QEMU, then 0.15 s; exit 3 when it cannot, e.g. the image has no pip: the image's python3 checks then).
Without importlib.metadata (Python < 3.8): `pip check`'s lines about those distributions.

`install IMAGE.json SCHEME.json HOME WHEEL PLATFORM...`: run by the build host's python3 in a stage under
emulation (native-pip.sh's `ab_pip WHEEL`): the image's own pip (its code, on this CPU) installs WHEEL into HOME for
the image's Python and platforms, `--no-deps`; when the image has all it requires (`check`'s rule), `place` puts
it where the image's pip would (1.3 s for 3-4 s under QEMU). Exit 3, nothing placed, when the image's pip has
to: pip is configured, the distribution is there, a requirement is missing or of another version, pip fails.

`pip PYTHON3 set|unset SCHEME.json HOME NOTES PLATFORM... -- ARGS...`: an installer's `python3 -m pip install ARGS`
(native-pip.sh's python3 shim while a .run installs; PYTHON3 the image's, `set` when LC_CTYPE was): `install` of
each wheel ARGS names, when it names nothing else but options that change nothing there; the image's pip
installs the rest (exec, ARGS without the wheels placed). Its notes go to NOTES and pip's --log."""
import base64
import contextlib
import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import warnings

HOME_SCRIPTS, UP = "bin/", "../../"
UNCHECKED = 3               # check --image: this python3 cannot check (e.g. it cannot import the image's pip)
# Debian's byte tools (the essential ones, and wget for the downloads); never the programs that report the machine or
# preload a library
TOOL_PACKAGES = ("coreutils", "diffutils", "findutils", "grep", "gzip", "sed", "tar", "wget")
NOT_NATIVE = {"arch", "uname", "nproc", "hostid", "stdbuf", "chroot"}
VERSIONS = "-f=${Package} ${Version}\\n"              # dpkg-query makes the \\n a newline
# pip's options (PIP_ variables, keys of its configuration files) that change nothing `install` does (a wheel
# by its path, into HOME)
HARMLESS_PIP = {"no-cache-dir", "disable-pip-version-check", "root-user-action", "break-system-packages", "no-input",
                "progress-bar", "default-timeout", "timeout", "retries", "index-url", "extra-index-url", "trusted-host",
                "find-links", "no-index", "no-warn-script-location", "cert", "client-cert", "proxy"}
SITE_PIP_CONF = "/etc/pip.conf"
# an installer's `python3 -m pip install` options that change nothing `install` does (with --no-deps: --force-reinstall)
SHIM_FLAGS = {"--no-deps", "--no-index", "-q", "--quiet", "-qq", "--force-reinstall", "-U", "--upgrade", "--no-cache-dir",
              "--disable-pip-version-check", "--no-warn-script-location", "--no-input", "--root-user-action=ignore"}
# a marker that names an extra and has no `or` holds for no install without extras (pip check's): such a line
# needs no parsing (fsspec has 103 of them, 0.6 s with pip's packaging under QEMU)
NEEDS_EXTRA = re.compile(r"""\bextra\s*==\s*("[^"]+"|'[^']+')""")
HOME_HEADERS = re.compile(r"^include/(python|site/python\d+\.\d+)/(.+)$")    # pip's home scheme (in a venv: site/)


def scheme() -> dict:
    try:
        from pip._internal.locations import get_scheme
        found = get_scheme("D")
        paths = {k: getattr(found, k) for k in ("purelib", "platlib", "scripts", "data")}
        paths["headers"] = os.path.dirname(found.headers)
    except Exception:           # no pip (yet): the interpreter's own scheme
        import sysconfig
        got = sysconfig.get_paths()
        paths = {"purelib": got["purelib"], "platlib": got["platlib"], "scripts": got["scripts"], "data": got["data"],
                 "headers": got["include"]}
    dirs = {}
    for path in paths.values():
        while True:
            if os.path.isdir(path) and path not in dirs:
                st = os.stat(path)
                dirs[path] = [st.st_mode & 0o7777, st.st_uid, st.st_gid]
            if path == "/":
                break
            path = os.path.dirname(path)
    return dict(paths, executable=sys.executable, version="%d.%d" % sys.version_info[:2], dirs=dirs)


def record_hash(path: str):
    import hashlib              # here, as compileall below: not imported by `probe` (0.15 s under QEMU)
    with open(path, "rb") as f:
        data = f.read()
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("="), str(len(data))


def shebang(executable: str) -> bytes:
    """distlib's, as pip's script maker writes it for `executable` (a path with a space: quoted, run by sh)."""
    exe = executable.encode()
    if b" " not in exe and len(exe) + 3 <= 127:
        return b"#!" + exe + b"\n"
    if b" " in exe:
        exe = b'"' + exe + b'"'
    return b"#!/bin/sh\n'''exec' " + exe + b' "$0" "$@"\n' + b"' '''"


def retarget(path: str, here: str, there: str) -> bool:
    """Point a script written for this python3 at the image's; True when it changed."""
    with open(path, "rb") as f:
        data = f.read()
    for old in (shebang(here), b"#!" + here.encode() + b"\n"):
        if data.startswith(old):
            new = shebang(there) if old == shebang(here) else b"#!" + there.encode() + b"\n"
            if new != old:
                write(path, new + data[len(old):])
                return True
            return False
    return False


def write(path: str, data: bytes) -> None:
    """A new file at `path` (never through a hard link to HOME's), with the mode the old one had."""
    mode = 0o644
    if os.path.lexists(path):
        mode = os.stat(path).st_mode & 0o7777
        os.unlink(path)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def link(source: str, target: str) -> None:
    """`target` as HOME's `source` (same bytes, mode and mtime): a hard link, a copy across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def destination(path: str, where: dict, lib: str) -> str:
    """The final path of a RECORD entry of a `--target` install (relative to HOME/lib/python)."""
    if not path.startswith(UP):
        if path.startswith("../"):
            raise SystemExit("native-stage: unexpected RECORD path %r" % path)
        return os.path.normpath(os.path.join(lib, path))
    rest = path[len(UP):]
    if rest.startswith(HOME_SCRIPTS):
        return os.path.normpath(os.path.join(where["scripts"], rest[len(HOME_SCRIPTS):]))
    headers = HOME_HEADERS.match(rest)
    if headers:
        return os.path.normpath(os.path.join(where["headers"], headers.group(2)))
    return os.path.normpath(os.path.join(where["data"], rest))


def home_path(home: str, path: str) -> str:
    return os.path.normpath(os.path.join(home, path[len(UP):] if path.startswith(UP) else path))


def root_is_purelib(info: str) -> bool:
    with open(os.path.join(info, "WHEEL"), encoding="utf-8") as f:
        return any(line.strip().lower() == "root-is-purelib: true" for line in f)


def compile_one(job) -> bool:
    """As pip: compile_file(path, force=True, quiet=True), what it prints dropped (templates that are
    not Python); named as the final path (`job`: the staged file and the folder of that name)."""
    import compileall
    target, ddir = job
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore")              # as pip: no SyntaxWarning of a package's code in the log
        return bool(compileall.compile_file(target, ddir=ddir, force=True, quiet=1))


def compile_all(jobs: list) -> list:
    """compile_one of each job, on every CPU (the same bytes as one after the other)."""
    workers = min(len(jobs) // 50 + 1, os.cpu_count() or 1)
    if workers < 2:
        return [compile_one(job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(compile_one, jobs, chunksize=32))


def place(home: str, staging: str, where: dict, keep: bool = False, dirs: bool = True) -> int:
    """Move (`keep`: link) HOME's files to STAGING + where the image's pip puts them (see the module's doc);
    `dirs`: give the folders the image has their owner and mode."""
    here, there = sys.executable, where["executable"]
    moved = set()
    infos = sorted(n for n in os.listdir(home) if n.endswith(".dist-info"))
    records = []
    for info in infos:
        # pip's lib_dir: purelib or platlib as the wheel says (the same folder on Debian and Ubuntu;
        # where they differ, a wheel's .data/purelib and .data/platlib files follow its root here)
        lib = where["purelib"] if root_is_purelib(os.path.join(home, info)) else where["platlib"]
        record = os.path.join(home, info, "RECORD")
        with open(record, newline="", encoding="utf-8") as f:
            text = f.read()
        ending = "\r\n" if "\r\n" in text else "\n"
        rows, compiled = [], []
        for row in csv.reader(io.StringIO(text)):
            if not row:
                continue
            path, digest, size = (row + ["", ""])[:3]
            final = destination(path, where, lib)
            source, target = home_path(home, path), staging + final
            os.makedirs(os.path.dirname(target), exist_ok=True)
            (link if keep else os.rename)(source, target)
            moved.add(source)
            new = os.path.relpath(final, lib).replace(os.sep, "/")
            if os.path.dirname(final) == where["scripts"] and retarget(target, here, there) and digest:
                digest, size = record_hash(target)
            if final.endswith(".py"):       # pip compiles every .py it installs, data and scripts too,
                compiled.append((target, final, os.path.join(lib, new)))    # named lib/../../../share/x.py
            rows.append((new, digest, size))
        records.append((lib, info, ending, rows, compiled))
    done = iter(compile_all([(target, os.path.dirname(named)) for *_, compiled in records
                             for target, _, named in compiled]))
    for lib, info, ending, rows, compiled in records:
        for target, final, named in compiled:
            pyc = importlib.util.cache_from_source(final)
            if next(done) and os.path.exists(staging + pyc):
                rows.append((os.path.relpath(pyc, lib).replace(os.sep, "/"), "", ""))
        text = io.StringIO(newline="")
        csv.writer(text, lineterminator=ending).writerows(sorted((p, h, str(s)) for p, h, s in rows))
        write(staging + os.path.join(lib, info, "RECORD"), text.getvalue().encode("utf-8"))
    left = [os.path.join(d, n) for d, _, names in os.walk(home) for n in names if os.path.join(d, n) not in moved]
    if left:
        raise SystemExit("native-stage: files no RECORD lists: %s" % ", ".join(sorted(left)[:5]))
    for path, (mode, uid, gid) in where["dirs"].items() if dirs else ():
        staged = os.path.normpath(staging + "/" + path)
        if os.path.isdir(staged):
            os.chown(staged, uid, gid)
            os.chmod(staged, mode)
    return len(infos)


def settle(home: str, staging: str, guessed: dict, where: dict) -> str:
    """STAGING as placed for `where`: kept when the guess was right, else placed again from HOME."""
    if guessed == where:
        return "the image's pip puts them where this one does: placed already"
    shutil.rmtree(staging, ignore_errors=True)
    place(home, staging, where)
    differ = sorted(k for k in set(guessed) | set(where) if guessed.get(k) != where.get(k))
    return "the image's pip differs from this one's (%s): placed again" % ", ".join(differ)


def run(*cmd) -> str:
    return subprocess.check_output(cmd, universal_newlines=True)


def host_python(out: str) -> str:
    """This python3 to OUT/bin/pythonX.Y, its standard library (no tests, no site-packages) to
    OUT/lib/pythonX.Y, where it finds it from where it is (its libraries go with the tools'). The program's path."""
    import sysconfig
    version = "python%d.%d" % sys.version_info[:2]
    os.makedirs(os.path.join(out, "bin"), exist_ok=True)
    program = os.path.join(out, "bin", version)
    shutil.copy2(os.path.realpath(sys.executable), program)
    skip = shutil.ignore_patterns("test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "ensurepip",
                                  "site-packages", "dist-packages", "config-*")
    shutil.copytree(sysconfig.get_paths()["stdlib"], os.path.join(out, "lib", version), ignore=skip, symlinks=True)
    return program


def tools(out: str) -> str:
    """What it copied, or why nothing (no dpkg-query or ldd: not a Debian-family image): the mount
    points exist either way, and run-stage.sh keeps the image's tools without OUT/dpkg-query."""
    for sub in ("bin", "lib", "loader"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    query = shutil.which("dpkg-query")
    try:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *TOOL_PACKAGES], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, universal_newlines=True).stdout
        packages = [p for p in TOOL_PACKAGES if "%s install ok installed" % p in status.splitlines()]
        programs = []
        for path in run("dpkg-query", "-L", *packages).split("\n"):
            if re.match(r"^(/usr)?/s?bin/[^/]+$", path) and os.path.basename(path) not in NOT_NATIVE \
                    and os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        programs.append(path)
        for path in programs:
            shutil.copy2(path, os.path.join(out, "bin", os.path.basename(path)))
        try:
            python = [host_python(os.path.join(out, "python"))]
        except OSError:                 # the check then runs in the image's python3
            shutil.rmtree(os.path.join(out, "python"), ignore_errors=True)
            python = []
        for line in run("ldd", query, *python, *programs).split("\n"):
            found = re.match(r"^\s*(\S+) => (/\S+) \(", line) or re.match(r"^\s*(/\S+) \(", line)
            if not found:
                continue
            name, where = (found.group(1), found.group(2)) if found.lastindex == 2 else (None, found.group(1))
            target = os.path.join(out, "lib", name) if name else os.path.join(out, "loader", os.path.basename(where))
            if not os.path.exists(target):
                shutil.copy2(os.path.realpath(where), target)
        with open(os.path.join(out, "packages"), "w") as f:
            f.write(" ".join(packages) + "\n")
        with open(os.path.join(out, "versions"), "w") as f:
            f.write(run("dpkg-query", "-W", VERSIONS, *packages))
        shutil.copy2(query, os.path.join(out, "dpkg-query"))
    except (OSError, subprocess.CalledProcessError) as e:
        return "none (%s): the stages keep the image's" % e
    return "%d byte tools of this CPU in %s" % (len(programs), out)


def probe() -> dict:
    """What `check --image` needs of the image's python3 (run by it): sys.path, the folder holding its pip,
    the marker environment (packaging's default_environment, with os.uname for platform's)."""
    import platform
    pip = importlib.util.find_spec("pip")
    version = sys.implementation.version
    uname = os.uname()
    env = {"implementation_name": sys.implementation.name, "os_name": os.name, "sys_platform": sys.platform,
           "implementation_version": "%d.%d.%d" % version[:3] + (
               "" if version.releaselevel == "final" else version.releaselevel[0] + str(version.serial)),
           "platform_machine": uname.machine, "platform_release": uname.release, "platform_system": uname.sysname,
           "platform_version": uname.version, "python_full_version": platform.python_version(),
           "platform_python_implementation": platform.python_implementation(),
           "python_version": ".".join(platform.python_version_tuple()[:2])}
    return {"path": [p for p in sys.path if p], "env": env, "executable": sys.executable,
            "pip": os.path.dirname(os.path.dirname(pip.origin)) if pip and pip.origin else None}


def check(names, path=None, env=None) -> list:
    """What `pip check` says about the distributions `names` (see the module's doc): on `path` (else
    sys.path), markers evaluated in `env` (else this python3's; given, an ImportError is raised rather
    than this python3's pip check run)."""
    try:
        from importlib.metadata import distributions
        from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
        from pip._vendor.packaging.utils import canonicalize_name
        from pip._vendor.packaging.version import Version
    except ImportError:
        if env is not None:
            raise
        run = subprocess.run([sys.executable, "-m", "pip", "check"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True)
        norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()          # noqa: E731 (packaging's canonical form)
        mine = {norm(n) for n in names}
        return [line for line in run.stdout.splitlines() if line.split() and norm(line.split()[0]) in mine]
    found = {}
    for dist in distributions(**({"path": path} if path is not None else {})):
        if dist.metadata["Name"]:
            found.setdefault(canonicalize_name(dist.metadata["Name"]), dist)

    def shown(version):
        try:
            return str(Version(version))
        except ValueError:
            return version

    def takes(req, version):
        try:
            return req.specifier.contains(version, prereleases=True)
        except ValueError:          # a version packaging cannot read: no specifier takes it
            return False

    problems = []                # in pip check's words: canonical names, normalised versions
    for name in dict.fromkeys(canonicalize_name(n) for n in names):
        dist = found.get(name)
        for line in (dist.requires or []) if dist else []:
            marker = line.partition(";")[2]
            if NEEDS_EXTRA.search(marker) and not re.search(r"\bor\b", marker):
                continue
            who = "%s %s" % (name, shown(dist.version))
            try:
                req = Requirement(line)
            except InvalidRequirement as e:
                problems.append("%s has an invalid requirement %r: %s" % (who, line, e))
                continue
            if req.marker is not None and not req.marker.evaluate(dict(env or {}, extra="")):
                continue
            wanted = canonicalize_name(req.name)
            have = found.get(wanted)
            if have is None:
                problems.append("%s requires %s, which is not installed." % (who, wanted))
            elif not takes(req, have.version):
                problems.append("%s has requirement %s, but you have %s %s." % (who, req, wanted, shown(have.version)))
    return problems


class NotHere(Exception):
    """install: the image's pip installs this wheel itself (the reason)."""


def pip_configured(prefix: str) -> list:
    """What could make pip install otherwise than `install` runs it: PIP_ variables and keys of its
    configuration files ([global], [install]; global, the interpreter's prefix, the user's, PIP_CONFIG_FILE's)
    but the harmless ones."""
    import configparser
    home = os.path.expanduser("~")
    files = [os.path.join(d, "pip", "pip.conf") for d in os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":") if d]
    files += [SITE_PIP_CONF, os.path.join(prefix, "pip.conf"), os.path.join(home, ".pip", "pip.conf"),
              os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "pip", "pip.conf"),
              os.environ.get("PIP_CONFIG_FILE", os.devnull)]
    found = [k for k in sorted(os.environ) if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"
             and k[4:].lower().replace("_", "-") not in HARMLESS_PIP]
    for name in files:
        if name == os.devnull or not os.path.isfile(name):
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(name)
        except configparser.Error:
            found.append(name)
            continue
        found += ["%s: %s" % (name, key) for section in ("global", "install") if parser.has_section(section)
                  for key in parser.options(section) if key.lower().replace("_", "-") not in HARMLESS_PIP]
    return found


def install(image: dict, where: dict, home: str, wheel: str, platforms) -> str:
    """`ab_pip WHEEL` on this CPU (run by the build host's python3 in the stage): the image's own pip (its code,
    from `probe`'s folder) installs WHEEL for the image's Python and `platforms` into HOME (--target --no-deps
    --no-compile), then `place` puts it where the image's pip would (the byte code compiled here). NotHere
    (nothing placed) when pip is configured, WHEEL's distribution is installed already, pip cannot, or it
    requires what the image lacks or has in another version: the image's pip installs it then, as before."""
    try:
        if image.get("executable", where["executable"]) != where["executable"]:
            raise NotHere("that python3 is %s, not the image's %s" % (image["executable"], where["executable"]))
        name = unpack(image, where, home, wheel, platforms)
        problems = check([name], path=[home] + image["path"], env=image["env"])
    except NotHere:
        raise
    except Exception as e:
        raise NotHere("%s: %s" % (type(e).__name__, e))
    if problems:
        raise NotHere("it needs more than the image has: %s" % "; ".join(problems))
    place(home, "", where, keep=True, dirs=False)
    return "%s installed on this CPU by the image's pip (run by the build host's python3)" % os.path.basename(wheel)


def shim_pip(real: str, coerced: bool, scheme_json: str, home: str, notes: str, platforms, args) -> int:
    """`python3 -m pip install ARGS` of an installer (native-pip.sh's python3 shim; REAL: the image's python3):
    with only wheels by path and options that change nothing `install` does, each wheel as `install` does it, in
    order; the image's pip (REAL -m pip install, ARGS but the wheels placed) installs the first it cannot and those
    after, or everything when ARGS has more (or SCHEME.json cannot be read). The notes go to NOTES. `coerced`:
    this python3 set LC_CTYPE (PEP 538), which the image's python3 must not see."""
    env = dict(os.environ)
    if coerced:
        env.pop("LC_CTYPE", None)
    wheels, logs, known, i = [], [notes], True, 0
    while i < len(args):
        arg = args[i]
        if arg == "--log" and i + 1 < len(args):        # pip's log: the notes go there too
            i += 1
            logs.append(args[i])
        elif arg.startswith("--log="):
            logs.append(arg[len("--log="):])
        elif arg.endswith(".whl") and not arg.startswith("-") and os.path.isfile(arg):
            wheels.append(arg)
        elif arg not in SHIM_FLAGS:
            known = False
        i += 1
    if "--force-reinstall" in args and "--no-deps" not in args:      # it reinstalls what the wheels require too
        known = False
    placed, said, status = [], [], 0
    if known and wheels:
        try:
            where = read_json(scheme_json)
            try:
                image = json.loads(subprocess.check_output([real, os.path.abspath(__file__), "probe"], env=env,
                                                           universal_newlines=True))
            except (OSError, ValueError, subprocess.CalledProcessError) as e:
                raise NotHere("its python3 cannot tell what it has: %s: %s" % (type(e).__name__, e))
            for wheel in wheels:
                shutil.rmtree(home, ignore_errors=True)
                said.append(install(image, where, home, wheel, platforms))
                placed.append(wheel)
        except NotHere as e:            # nothing placed of this wheel
            said.append("the image's pip installs %s (%s)" % (" ".join(map(os.path.basename, wheels[len(placed):])), e))
        except Exception as e:          # `place` failed half-way: as the image's pip failing
            said.append("placing %s failed: %s: %s" % (os.path.basename(wheels[len(placed)]), type(e).__name__, e))
            status = 1
        finally:
            shutil.rmtree(home, ignore_errors=True)
    for log in logs if said else ():
        with open(log, "a") as f:
            f.writelines("native-stage: %s\n" % line for line in said)
    if status or len(placed) == len(wheels) > 0:
        return status
    rest = [a for a in args if a not in placed]
    os.execve(real, [real, "-m", "pip", "install"] + rest, env)


def unpack(image: dict, where: dict, home: str, wheel: str, platforms) -> str:
    """install's first half: WHEEL into HOME by the image's pip; its distribution's name."""
    if where["version"] != "%d.%d" % sys.version_info[:2]:        # its byte code would not load there
        raise NotHere("this python3 is %d.%d, the image's %s" % (sys.version_info[:2] + (where["version"],)))
    configured = pip_configured(os.path.dirname(os.path.dirname(where["executable"])))
    if configured:
        raise NotHere("pip is configured here (%s)" % ", ".join(configured))
    sys.path.append(image["pip"])
    from importlib.metadata import distributions
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename
    name = canonicalize_name(parse_wheel_filename(os.path.basename(wheel))[0])
    if any(canonicalize_name(d.metadata["Name"] or "") == name for d in distributions(path=image["path"])):
        raise NotHere("%s is installed already (pip replaces it)" % name)
    version = where["version"]
    boot = "import sys; sys.path.append(sys.argv.pop(1)); from pip._internal.cli.main import main; sys.exit(main())"
    command = [sys.executable, "-I", "-S", "-c", boot, image["pip"], "install", "--target", home, "--no-deps", "--no-compile",
               "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--only-binary=:all:", "--implementation",
               "cp", "--python-version", version, "--abi", "cp" + version.replace(".", "")]
    for tag in platforms:
        command += ["--platform", tag]
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("PIP_"))
    env["PIP_CONFIG_FILE"] = os.devnull
    pip = subprocess.run(command + [wheel], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if pip.returncode:
        raise NotHere("its pip, run here, failed: %s" % (pip.stdout.strip().splitlines() or ["?"])[-1])
    return name


def read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise NotHere("%s: %s" % (type(e).__name__, e))


def main(argv) -> int:
    if argv[:1] == ["scheme"]:
        print(json.dumps(scheme(), sort_keys=True))
        return 0
    if argv[:1] in (["guess"], ["settle"]) and len(argv) == {"guess": 4, "settle": 5}[argv[0]]:
        if argv[0] == "guess":          # where this python3's pip puts them: the image's too, most often
            with open(argv[3], "w") as f:
                json.dump(scheme(), f, sort_keys=True)
        loaded = []
        for name in argv[3:]:
            with open(name) as f:
                loaded.append(json.load(f))
        where = loaded[-1]
        if where["version"] != "%d.%d" % sys.version_info[:2]:
            raise SystemExit("native-stage: this python3 is %d.%d, the image's %s" % (sys.version_info[:2] + (where["version"],)))
        if argv[0] == "settle":
            print("native-stage: " + settle(argv[1], argv[2], *loaded))
            return 0
        count = place(argv[1], argv[2], where, keep=True)
        print("native-stage: placed %d distributions under %s" % (count, argv[2]))
        return 0
    if argv[:1] == ["tools"] and len(argv) == 2:
        print("native-stage: " + tools(argv[1]))
        return 0
    if argv[:1] == ["probe"] and len(argv) == 1:
        print(json.dumps(probe(), sort_keys=True))
        return 0
    if argv[:2] == ["check", "--image"] and len(argv) > 2:
        try:
            with open(argv[2]) as f:
                image = json.load(f)
            if image.get("pip"):
                sys.path.append(image["pip"])           # the image's pip, for the packaging it vendors
            problems = check(argv[3:], path=image["path"], env=image["env"])
        except Exception as e:          # e.g. no pip in the image: its own python3 checks (as without --image)
            print("native-stage: the build host's python3 cannot check here (%s: %s)" % (type(e).__name__, e))
            return UNCHECKED
        print("\n".join(problems))
        return 1 if problems else 0
    if argv[:1] == ["pip"] and "--" in argv[6:]:
        end = argv.index("--", 6)
        return shim_pip(argv[1], argv[2] != "set", argv[3], argv[4], argv[5], argv[6:end], argv[end + 1:])
    if argv[:1] == ["install"] and len(argv) >= 5:
        try:
            said = install(read_json(argv[1]), read_json(argv[2]), *argv[3:5], platforms=argv[5:])
        except NotHere as e:          # nothing placed: the image's pip installs it
            print("native-stage: the image's pip installs %s (%s)" % (os.path.basename(argv[4]), e))
            return UNCHECKED
        print("native-stage: " + said)
        return 0
    if argv[:1] == ["check"]:
        problems = check(argv[1:])
        print("\n".join(problems))
        return 1 if problems else 0
    raise SystemExit("usage: native-stage.py scheme | guess HOME STAGING OUT.json | "
                     "settle HOME STAGING GUESS.json SCHEME.json | tools OUT | probe | check [--image IMAGE.json] NAME... | "
                     "install IMAGE.json SCHEME.json HOME WHEEL PLATFORM... | "
                     "pip PYTHON3 set|unset SCHEME.json HOME NOTES PLATFORM... -- PIP-INSTALL-ARGS...")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
