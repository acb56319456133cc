"""The `.part` files of downloads. A run writes only a part it holds locked (fcntl.flock), so two
fetches into one folder never write the same file: the first takes `.<file>.part`, another one at
the same time `.<file>.<token>.part`. A part no running fetch holds (the fetch that wrote it died
or was stopped) is taken over and continued."""
import contextlib
import fcntl
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, List, Optional

from ..errors import PackageError

TRIES = 8


@dataclass
class Part:
    """A part file this run holds: `file` is open for reading and writing, and locked."""

    path: Path
    file: BinaryIO

    def close(self) -> None:
        """Keep it for the next run (unlocked); a part that holds no byte is removed (there is
        nothing to continue). What a full disk kept from being written is simply not kept: the
        next run continues from the bytes the file holds."""
        with contextlib.suppress(OSError):
            self.file.flush()
        with contextlib.suppress(OSError):
            if os.fstat(self.file.fileno()).st_size == 0:
                self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.file.close()

    def drop(self) -> None:
        self.path.unlink(missing_ok=True)
        self.file.close()


def names(workdir: Path, filename: str) -> List[str]:
    """The parts of `filename` in the folder, the plain name first."""
    pattern = re.compile(rf"\.{re.escape(filename)}(\.[0-9a-f]{{8}})?\.part")
    return sorted((n for n in os.listdir(workdir) if pattern.fullmatch(n)), key=lambda n: (len(n), n))


def _take(path: Path, create: bool) -> Optional[Part]:
    """`path` opened and locked; None when another run holds it or it went away meanwhile."""
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except (FileNotFoundError, FileExistsError):
        return None
    except OSError as exc:
        raise PackageError(f"cannot write {path}: {exc.strerror or exc}",
                           fix="remove it if it is a link, and check the folder's permissions") from None
    file = os.fdopen(fd, "r+b")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PackageError(f"{path} is not a regular file", fix="remove it and run fetch again")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        now = os.stat(path, follow_symlinks=False)
        if (now.st_dev, now.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            return Part(path, file)
    except (BlockingIOError, FileNotFoundError):
        pass
    except BaseException:
        file.close()
        raise
    file.close()
    return None


def claim(workdir: Path, filename: str) -> Part:
    """A part of `filename` for this run: one left by a run that stopped, else a new one."""
    for _ in range(TRIES):
        for name in names(workdir, filename):
            part = _take(workdir / name, create=False)
            if part is not None:
                return part
        plain = f".{filename}.part"
        name = plain if not os.path.lexists(workdir / plain) else f".{filename}.{secrets.token_hex(4)}.part"
        part = _take(workdir / name, create=True)
        if part is not None:
            return part
    raise PackageError(f"cannot take a .part file for {filename} in {workdir}: other fetches hold them",
                       fix="let the other fetches into this folder finish, then run fetch again")


def sweep(workdir: Path, filename: str) -> None:
    """Remove the parts of `filename` that no running fetch holds (once the file is whole)."""
    for name in names(workdir, filename):
        try:
            part = _take(workdir / name, create=False)
        except PackageError:
            continue                                    # not ours to judge once the file is whole
        if part is not None:
            part.drop()
