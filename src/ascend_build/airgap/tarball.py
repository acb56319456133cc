"""Writing the archive: the layout's files into one tar, in a fixed order (SHA256SUMS first), with
fixed owners, modes and times so the same images give the same bytes. Each blob is hashed again
as it is written: a file that changed on disk since skopeo wrote it stops the save."""
import hashlib
import tarfile
from pathlib import Path
from typing import Callable, List, Optional

from ..errors import ArchiveError
from .layout import BLOBS, CHUNK

Progress = Optional[Callable[[int], None]]


class _Hashing:
    """A file object that hashes and counts what tarfile reads from it."""

    def __init__(self, handle, on_bytes: Progress):
        self.handle, self.on_bytes, self.sha = handle, on_bytes, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size if size and size > 0 else CHUNK)
        self.sha.update(data)
        if self.on_bytes and data:
            self.on_bytes(len(data))
        return data


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = size, 0o644, 0, 0, 0, "", ""
    return info


def write(root: Path, members: List[str], output: Path, on_bytes: Progress = None) -> int:
    """The tar of `members` (names under `root`) at `output`; its size."""
    with open(output, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("blobs", BLOBS):
            info = _info(folder, 0)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name in members:
            path = root / name
            with open(path, "rb") as handle:
                reader = _Hashing(handle, on_bytes)
                tar.addfile(_info(name, path.stat().st_size), reader)
            if name.startswith(BLOBS + "/") and reader.sha.hexdigest() != name.rsplit("/", 1)[1]:
                raise ArchiveError(f"{path} changed while the archive was written (its sha256 is no longer its name)",
                                   fix="run save again; check the disk if it happens twice")
        tar.close()
        return raw.tell()
