"""One writer per working folder: `build`, `fetch` and `bake` hold an exclusive lock (flock) on
`.ascend-build/lock` while they run. A second run waits for the first (saying which process it
waits for), or with --no-wait fails at once. The kernel drops the lock when the holder ends,
however it ends (exit, Ctrl-C, kill -9): a lock is never left behind. The lock file stays; it
holds the holder's pid and command line, read only to name it."""
import contextlib
import errno
import fcntl
import json
import os
import stat
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

from .errors import BusyError, OutputError
from .statefiles import state_error

LOCK_NAME = "lock"
MOST_SHOWN = 200                   # characters of the holder's command line shown


def _open(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OutputError(f"cannot use the lock {path}: it is a symbolic link", fix=f"remove {path}; it is made again") from None
        raise state_error(path, err) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"cannot use the lock {path}: it is not a regular file", fix=f"remove {path}; it is made again")
    return fd


def _shown(text: str) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= MOST_SHOWN else text[:MOST_SHOWN] + "..."


def holder(fd: int) -> str:
    """The holder as `pid N (COMMAND)`, from what it wrote in the lock file (checked: it may be anything)."""
    try:
        found = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        pid, command = found["pid"], found["command"]
        if isinstance(pid, int) and not isinstance(pid, bool) and isinstance(command, str):
            return f"pid {pid} ({_shown(command)})"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return "another ascend-build run"


def _record(fd: int, command: str) -> None:
    """Name this process in the lock file (best effort: a full disk only makes the name unknown)."""
    data = json.dumps({"pid": os.getpid(), "command": command}).encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)


def command_line(argv: Optional[list] = None) -> str:
    return "ascend-build " + " ".join(sys.argv[1:] if argv is None else argv)


@contextlib.contextmanager
def one_writer(root: Path, command: str, wait: bool, on_wait: Callable[[str], None]) -> Iterator[None]:
    """Hold the state folder `root`'s lock for the block. Taken: at once, or after `on_wait`
    was told whom we wait for; with wait=False a held lock is a BusyError naming its holder."""
    path = Path(root) / LOCK_NAME
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = holder(fd)
            folder = Path(root).parent
            if not wait:
                raise BusyError(f"the working folder {folder} is in use by {who}",
                                fix="wait for that run to end, or run again without --no-wait to wait for it") from None
            on_wait(f"the working folder {folder} is in use by {who}: waiting for it to end (Ctrl-C to stop)")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _record(fd, command)
        yield
    finally:
        os.close(fd)
