"""The working directory's state folder `.ascend-build/`: build contexts, logs, the package
server's token, the URL secret of a running build, the hash cache. Made once, on first use."""
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

STATE_DIR = ".ascend-build"
HASH_CACHE = "hashes.json"


@dataclass(frozen=True)
class State:
    root: Path

    @classmethod
    def of(cls, workdir: Path) -> "State":
        root = Path(workdir) / STATE_DIR
        root.mkdir(exist_ok=True)
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
        logs.mkdir(exist_ok=True)
        return logs / f"build-{datetime.now():%Y%m%d-%H%M%S}.log"

    def token(self) -> str:
        """The package server's token (mode 0600), made once at random. Stable, so that a URL
        passed as a build argument does not change the layer cache."""
        path = self.root / "server-token"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(24))
        return path.read_text().strip()
