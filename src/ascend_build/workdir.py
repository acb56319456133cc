"""The working directory's state folder `.ascend-build/`: build contexts, logs, the package
server's token, the URL secret of a running build, the hash cache. Made once, on first use."""
import os
import re
import secrets
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .errors import OutputError

STATE_DIR = ".ascend-build"
HASH_CACHE = "hashes.json"
TOKEN_NAME = "server-token"
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,256}")


def _unusable(path: Path, why: str) -> OutputError:
    if path.name == TOKEN_NAME:
        return OutputError(f"cannot use the package server's token {path}: {why}",
                           fix=f"remove {path}; a new token is made")
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
            raise _unusable(root, err.strerror or str(err)) from None
        return cls(root)

    @property
    def context(self) -> Path:
        return self.root / "context"

    @property
    def bake(self) -> Path:
        return self.root / "bake"

    @property
    def url_secret(self) -> Path:
        return self.root / "pkg-url.secret"

    @property
    def image_id(self) -> Path:
        return self.root / "last-image-id"

    @property
    def layers(self) -> Path:
        """The last built image's id and layers (its history), for a rebuild of the same image."""
        return self.root / "last-layers.json"

    def new_log(self) -> Path:
        logs = self.root / "logs"
        try:
            logs.mkdir(exist_ok=True)
        except OSError as err:
            raise _unusable(logs, err.strerror or str(err)) from None
        return logs / f"build-{datetime.now():%Y%m%d-%H%M%S}.log"

    def token(self) -> str:
        """The package server's token (mode 0600), made once at random. Stable, so that a URL
        passed as a build argument does not change the layer cache. A token file of the wrong
        shape is made again; one that is not a regular file is one OutputError."""
        path = self.root / TOKEN_NAME
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError:
            return self._new_token(path)
        except OSError as err:
            reason = "it is a symbolic link" if path.is_symlink() else (err.strerror or str(err))
            raise _unusable(path, reason) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _unusable(path, "it is not a regular file")
        with os.fdopen(fd, "rb") as source:
            text = source.read(4096).decode("ascii", "replace").strip()
        return text if TOKEN_SHAPE.fullmatch(text) else self._new_token(path)

    @staticmethod
    def _new_token(path: Path) -> str:
        token = secrets.token_urlsafe(24)
        temp = None
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{TOKEN_NAME}.tmp-", dir=path.parent)
            with os.fdopen(fd, "w") as out:
                out.write(token)
            os.replace(temp, path)
        except OSError as err:
            raise _unusable(path, err.strerror or str(err)) from None
        finally:
            if temp and os.path.exists(temp):
                os.unlink(temp)
        return token
