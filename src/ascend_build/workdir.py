"""The working directory's state folder `.ascend-build/`: logs, the package server's token, the
layer cache's epoch (`build --no-cache`), the hash cache, and `runs/<pid>-<random>/` for what one run alone uses (its build context, its URL
secret), removed when it ends. Made once, on first use; written through statefiles.py."""
import contextlib
import errno
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional

from .errors import OutputError
from .statefiles import guarded, remove_quietly, state_error, write_state

STATE_DIR = ".ascend-build"
HASH_CACHE = "hashes.json"
TOKEN_NAME = "server-token"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,256}")
EPOCH_NAME = "cache-epoch"
EPOCH_SHAPE = re.compile(r"[0-9a-f]{12}")
RUNS = "runs"
RUN_NAME = re.compile(r"([0-9]{1,10})-[0-9a-f]{8}")


def _unusable(path: Path, why: str) -> OutputError:
    if path.name == TOKEN_NAME:
        return OutputError(f"cannot use the package server's token {path}: {why}",
                           fix=f"remove {path}; a new token is made")
    if path.name == EPOCH_NAME:
        return OutputError(f"cannot use the layer cache's epoch {path}: {why}",
                           fix=f"remove {path} (`build --no-cache` makes a new one)")
    return OutputError(f"cannot use {path}: {why}",
                       fix=f"ascend-build keeps build contexts, logs and the server token in {STATE_DIR}/: "
                           "make it a writable folder (or remove it; it is made again)")


@dataclass(frozen=True)
class State:
    root: Path

    @classmethod
    def of(cls, workdir: Path) -> "State":
        """The state folder, made when missing; one OutputError when it is not a writable folder."""
        root = Path(workdir) / STATE_DIR
        try:
            if os.path.lexists(root) and not root.is_dir():
                raise _unusable(root, "it is not a folder")
            root.mkdir(exist_ok=True)
            tempfile.TemporaryFile(dir=root).close()
        except OSError as err:
            full = err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
            raise (state_error(root, err) if full else _unusable(root, err.strerror or str(err))) from None
        return cls(root)

    @property
    def bake(self) -> Path:
        return self.root / "bake"

    @property
    def image_id(self) -> Path:
        return self.root / "last-image-id"

    @property
    def layers(self) -> Path:
        """The last built image's id and layers (its history), for a rebuild of the same image."""
        return self.root / "last-layers.json"

    def new_log(self) -> Path:
        """A new, empty build log (never one an earlier build wrote)."""
        logs = self.root / "logs"
        with guarded(logs):
            logs.mkdir(exist_ok=True)
        stamp = f"build-{datetime.now():%Y%m%d-%H%M%S}"
        for n in range(100):
            path = logs / (f"{stamp}.log" if n == 0 else f"{stamp}-{n}.log")
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
                return path
            except FileExistsError:
                continue
            except OSError as err:
                raise state_error(path, err) from None
        raise OutputError(f"cannot make a new log in {logs}: too many logs of this second", fix="run again")

    @contextlib.contextmanager
    def new_run(self) -> Iterator["Run"]:
        """A folder of this run's own (`runs/<pid>-<random>/`, mode 0700), removed at the end
        however the run ends; folders of runs whose process is gone are removed first."""
        runs = self.root / RUNS
        with guarded(runs):
            runs.mkdir(exist_ok=True)
        _drop_stale(runs)
        folder = runs / f"{os.getpid()}-{secrets.token_hex(4)}"
        with guarded(folder):
            folder.mkdir(mode=0o700)
        try:
            yield Run(folder)
        finally:
            remove_quietly(folder)

    def token(self) -> str:
        """The package server's token (mode 0600), made once at random. Stable, so that a URL
        passed as a build argument does not change the layer cache. A token file of the wrong
        shape is made again; one that is not a regular file is one OutputError."""
        path = self.root / TOKEN_NAME
        text = _read_small(path)
        if text is not None and TOKEN_SHAPE.fullmatch(text):
            return text
        token = secrets.token_urlsafe(24)
        write_state(path, token, mode=0o600)
        return token

    def cache_epoch(self, renew: bool = False) -> Optional[str]:
        """The layer cache's epoch: none until a `build --no-cache`, which makes a new one (`renew`).
        The Dockerfile's first stages declare it, so every RUN after a --no-cache runs again once
        and later builds reuse those layers, not older ones. A file of the wrong shape counts as none."""
        path = self.root / EPOCH_NAME
        if renew:
            epoch = secrets.token_hex(6)
            write_state(path, epoch)
            return epoch
        text = _read_small(path)
        return text if text is not None and EPOCH_SHAPE.fullmatch(text) else None


def _read_small(path: Path) -> Optional[str]:
    """A small state file's text, stripped; None when it does not exist. One OutputError when it
    is a symbolic link or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as err:
        reason = "it is a symbolic link" if path.is_symlink() else (err.strerror or str(err))
        raise _unusable(path, reason) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _unusable(path, "it is not a regular file")
    with os.fdopen(fd, "rb") as source:
        return source.read(4096).decode("ascii", "replace").strip()


@dataclass(frozen=True)
class Run:
    """What one run alone uses, in its own folder under `runs/`."""

    root: Path

    @property
    def context(self) -> Path:
        return self.root / "context"

    @property
    def url_secret(self) -> Path:
        return self.root / "pkg-url.secret"


def _drop_stale(runs: Path) -> None:
    """Remove the run folders whose process has ended (a run killed with SIGKILL leaves one)."""
    try:
        names = os.listdir(runs)
    except OSError:
        return
    for name in names:
        found = RUN_NAME.fullmatch(name)
        if found and not _alive(int(found.group(1))):
            remove_quietly(runs / name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
