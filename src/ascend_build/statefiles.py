"""Every write to the state folder `.ascend-build/` goes through here. A write that fails (disk
full, read-only file system, permission, ...) is one OutputError naming the path and the free
space left; a file is written under a temporary name in its folder and renamed into place, so a
failure leaves nothing half-written. Standard library and errors.py only."""
import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Union

from .errors import OutputError
from .units import human_bytes

FULL = (errno.ENOSPC, errno.EDQUOT)


def free_space(path: Path) -> str:
    """The free space of the file system `path` (or its nearest existing parent) is on."""
    path = Path(os.path.abspath(path))
    for folder in (path, *path.parents):
        try:
            return human_bytes(shutil.disk_usage(folder).free)
        except OSError:
            continue
    return "unknown"


def state_error(path: Path, err: OSError) -> OutputError:
    """One message for a state folder write that failed: the path, why, the free space, a fix."""
    why = err.strerror or str(err)
    message = f"cannot write {path}: {why} ({free_space(path)} free on its file system)"
    if err.errno in FULL:
        fix = (f"free space on the file system of {path.parent} (old logs are in .ascend-build/logs/; "
               "`docker system prune` frees the engine's), then run again")
    elif err.errno == errno.EROFS:
        fix = f"{path.parent} is on a read-only file system: run in a working folder on a writable one"
    elif err.errno in (errno.EACCES, errno.EPERM):
        fix = f"make {path.parent} writable by you (or remove .ascend-build/; it is made again)"
    else:
        fix = "ascend-build keeps build contexts, logs and caches in .ascend-build/: make it a writable folder"
    return OutputError(message, fix=fix)


@contextlib.contextmanager
def guarded(path: Path) -> Iterator[Path]:
    """Run a write of `path`: an OSError becomes state_error(path)."""
    try:
        yield path
    except OSError as err:
        raise state_error(path, err) from None


def write_state(path: Path, content: Union[str, bytes], mode: int = 0o644) -> Path:
    """Write `path` whole or not at all (a temporary file in its folder, renamed into place);
    created with `mode` (0o600 for secrets: never readable by others, not even for a moment)."""
    path = Path(path)
    data = content.encode() if isinstance(content, str) else content
    temp = None
    with guarded(path):
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)   # mode 0600
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            if mode != 0o600:
                os.chmod(temp, mode)
            os.replace(temp, path)
            temp = None
        finally:
            if temp:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
    return path


def remove_quietly(path: Path) -> None:
    """Remove a file or folder the tool made; a missing one (or one that cannot go) is no error."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
