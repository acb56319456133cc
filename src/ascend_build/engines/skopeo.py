"""skopeo: copies images between the engines' stores, registries and folders (`dir:`) without a
daemon of its own. The one door to it, as base.py is to the engines: every value reaches it
after `--`, behind a transport prefix, so none can be read as an option."""
import os
import re
import shutil
import subprocess
from collections import deque
from typing import Callable, Dict, Optional, Sequence

from ..errors import EngineError
from .base import stop_process_group

PREFIX = re.compile(r'^(?:Error parsing image name|initializing source|initializing destination) "?[^"]*"?: ')
INSTALL = "install it: apt-get install skopeo (Debian, Ubuntu), dnf install skopeo (openEuler, RHEL)"


class Skopeo:
    def __init__(self, binary: str = "skopeo", env: Optional[Dict[str, str]] = None):
        self.binary = binary
        self.env = env

    @classmethod
    def find(cls) -> "Skopeo":
        found = shutil.which("skopeo")
        if not found:
            raise EngineError("skopeo is not installed; save and load copy images with it", fix=INSTALL)
        return cls(found)

    def _env(self, tmpdir: Optional[str]) -> Dict[str, str]:
        env = {**os.environ, **(self.env or {})}
        if tmpdir:
            env["TMPDIR"] = tmpdir         # with --tmpdir: skopeo's big temporary files (a `docker save` stream) go there
        return env

    def copy(self, source: str, dest: str, flags: Sequence[str] = (), tmpdir: Optional[str] = None,
             on_line: Optional[Callable[[str], None]] = None, timeout: float = 7200) -> None:
        """`skopeo copy FLAGS -- SOURCE DEST`; each output line to `on_line`; EngineError with
        skopeo's own message when it fails."""
        args = [self.binary, *(["--tmpdir", tmpdir] if tmpdir else []), "copy", *flags, "--", source, dest]
        tail: deque = deque(maxlen=20)
        try:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    text=True, errors="replace", env=self._env(tmpdir), start_new_session=True)
        except FileNotFoundError:
            raise EngineError(f"{self.binary} not found", fix=INSTALL) from None
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                if on_line:
                    on_line(line)
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                stop_process_group(proc)
        if proc.returncode != 0:
            raise EngineError(f"skopeo could not copy {source} to {dest}: {_message(tail)}",
                              fix=_fix(" ".join(tail)))

    def inspect_raw(self, ref: str, flags: Sequence[str] = (), timeout: float = 120) -> subprocess.CompletedProcess:
        """`skopeo inspect --raw FLAGS -- REF`: the manifest as stored; the answer, not checked."""
        try:
            return subprocess.run([self.binary, "inspect", "--raw", *flags, "--", ref], capture_output=True, text=True,
                                  timeout=timeout, env=self._env(None))
        except FileNotFoundError:
            raise EngineError(f"{self.binary} not found", fix=INSTALL) from None
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess([], 1, "", f"no answer in {timeout:.0f} s")


def message_of(output: str) -> str:
    """skopeo's own words out of its log line (`time=... level=fatal msg="..."`)."""
    text = output.strip().splitlines()[-1] if output.strip() else "no output"
    if 'msg="' in text:
        text = text.split('msg="', 1)[1].rstrip('"').replace('\\"', '"')
    text = PREFIX.sub("", text)          # skopeo's "Error parsing image name \"docker://...\": " says the name again
    return text[-600:]


def _message(tail: "deque") -> str:
    return message_of("\n".join(tail))


def _fix(output: str) -> Optional[str]:
    lower = output.lower()
    if "http response to https client" in lower:
        return "the registry speaks plain HTTP: add --insecure-registry (allowed for a registry on this host)"
    if "unauthorized" in lower or "authentication required" in lower or "denied" in lower:
        return "log in with the engine's own client (`docker login REGISTRY`), then run this again"
    if "no space left" in lower:
        return "free some space, or point TMPDIR / --temp-dir at a larger disk"
    return None
