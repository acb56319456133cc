"""The environment a stage's set_env.sh files give, as static ENV. Standard library only: the same
file runs in the image (`python3 - capture LINES` prints the environment before and after sourcing,
as JSON; a build sends shell()'s bash script instead), on the host of an exported build (`python3
capture-env.py dockerfile-env < CAPTURE` prints the ENV instruction) and is imported by build, export
and verify."""
import json
import os
import re
import subprocess
import sys

IGNORED = {"PWD", "SHLVL", "_", "OLDPWD", "COLUMNS", "LINES"}   # shell bookkeeping
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# Dockerfile parsers (moby/buildkit's, in docker and buildx; podman's buildah vendors it) read a line
# with a bufio.Scanner of 64 KiB: a line with its newline longer than 65535 bytes fails the build
# with "dockerfile line greater than max allowed size of 65535".
MAX_LINE = 65535
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# ab_source FILE ARGS: a set_env.sh the stage installed (missing: the capture fails naming it);
# ab_source_if FILE ARGS: one that only some releases have.
PRELUDE = r"""set +eu
ab_source() { f=$1; shift; [ -f "$f" ] || { echo "ascend-build: $f not found (the stage installed no such set_env.sh)" >&2; exit 3; }; . "$f" "$@"; }
ab_source_if() { f=$1; shift; if [ -f "$f" ]; then . "$f" "$@"; fi; }
"""


class RefusedValue(ValueError):
    """A captured variable that cannot be written as a Dockerfile ENV."""


def path_like(key: str) -> bool:
    """PATH, LD_LIBRARY_PATH, PYTHONPATH, ASCEND_..._PATH: `:`-separated lists."""
    return key.endswith("PATH")


def normalise(key: str, value: str) -> str:
    """A PATH-like value without empty elements (an empty LD_LIBRARY_PATH element means the current
    folder) nor repeated ones (the first occurrence wins, as in a lookup)."""
    if not path_like(key):
        return value
    kept = []
    for part in value.split(":"):
        if part and part not in kept:
            kept.append(part)
    return ":".join(kept)


def env_diff(before: dict, after: dict) -> dict:
    """What sourcing changed or added (shell bookkeeping variables and exported functions left
    out), PATH-like lists normalised; variables it unset are not ENV's business."""
    changed = {}
    for key, value in after.items():
        if key in IGNORED or key.startswith("BASH_FUNC_"):
            continue
        value = normalise(key, value)
        if key not in before or normalise(key, before[key]) != value:
            changed[key] = value
    return changed


def differences(image_env: dict, sourced: dict) -> list:
    """The variables whose value in the image differs from what sourcing again gives (`sourced`:
    the environment after sourcing on top of the image's), compared normalised."""
    return sorted(env_diff(image_env, sourced))


def quote(value: str) -> str:
    """A double-quoted Dockerfile word that stays literal: `\\`, `"` and `$` escaped (ENV and LABEL
    expand `$VAR`); control characters and line breaks refused."""
    bad = CONTROL.search(value)
    if bad:
        raise RefusedValue(f"contains the control character {bad.group()!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def dockerfile_env(env: dict) -> str:
    """One ENV instruction (empty text for no variables), one variable a line; RefusedValue naming
    the variable."""
    pairs = []
    for key in sorted(env):
        if not KEY.fullmatch(key):
            raise RefusedValue(f"sourcing set the variable {key!r}, which is not a valid name")
        try:
            pairs.append(f"{key}={quote(env[key])}")
        except RefusedValue as err:
            raise RefusedValue(f"sourcing set {key} to a value that {err}") from None
        line = len(pairs[-1].encode("utf-8", "surrogateescape")) + len("ENV  \\\n")
        if line > MAX_LINE:
            raise RefusedValue(f"sourcing set {key} to a value of {len(env[key].encode('utf-8', 'surrogateescape'))} "
                               f"bytes: its Dockerfile line would be {line} bytes, over the {MAX_LINE} the engines' "
                               "Dockerfile parser takes")
    return "ENV " + " \\\n    ".join(pairs) + "\n" if pairs else ""


def capture(lines: list) -> dict:
    """Run `lines` in bash (their output goes to stderr) and return the environment before and
    after, or the error."""
    script = PRELUDE + "{\n" + "\n".join(lines) + "\n} >&2\nenv -0\n"
    done = subprocess.run(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if done.returncode != 0:
        return {"error": done.stderr.decode(errors="replace").strip()[-1000:] or f"bash exited with {done.returncode}"}
    return {"before": dict(os.environ), "after": environment(done.stdout.decode(errors="replace"))}


def environment(text: str) -> dict:
    """`env -0`'s output as a dict."""
    return dict(e.split("=", 1) for e in text.split("\0") if "=" in e)


SOURCED = "\0ascend-build: sourced\0"      # between the two environments shell()'s script prints


def shell(lines: list, seconds: int) -> str:
    """capture() as one bash script, for a container whose entry point is bash (no python3 to start:
    0.3-0.45 s less under QEMU): the environment, SOURCED and the environment after sourcing `lines`
    (their output to stderr), NUL-separated. The sourcing is killed after `seconds`; bash, the
    container's first process (which a KILL from inside cannot end), then ends, and the container."""
    body = "env -0\nprintf '" + SOURCED.replace("\0", "\\0") + "'\n" + PRELUDE + "{\n" + "\n".join(lines) + "\n} >&2\nenv -0\n"
    return "(\n" + body + ') &\nchild=$!\n(sleep %d && kill -KILL "$child") 2>/dev/null &\nwait "$child"\n' % seconds


def shell_answer(code: int, out: str, err: str) -> dict:
    """capture()'s answer from what shell()'s script printed and its exit status."""
    before, sourced, after = out.partition(SOURCED)
    if code != 0 or not sourced:
        return {"error": err.strip()[-1000:] or f"bash exited with {code}"}
    return {"before": environment(before), "after": environment(after)}


def main(argv: list) -> int:
    if argv[:1] == ["capture"] and len(argv) == 2:
        print(json.dumps(capture(json.loads(argv[1]))))
        return 0
    if argv == ["dockerfile-env"]:
        found = json.load(sys.stdin)
        if "error" in found:
            sys.stderr.write(f"sourcing failed: {found['error']}\n")
            return 1
        try:
            sys.stdout.write(dockerfile_env(env_diff(found["before"], found["after"])))
        except RefusedValue as err:
            sys.stderr.write(f"{err}\n")
            return 1
        return 0
    sys.stderr.write("usage: python3 capture-env.py capture LINES_JSON | dockerfile-env < CAPTURE_JSON\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
