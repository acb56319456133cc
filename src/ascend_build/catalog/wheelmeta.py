"""What a wheel says of itself, read with bounded reads: its METADATA (name, version,
Requires-Dist, Requires-Python) and, for torch, the C++ ABI of its libraries.

A wheel that cannot be read gives None here: the integrity check reports why."""
import lzma
import zipfile
import zlib
from dataclasses import asdict, dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Optional, Tuple

MAX_METADATA = 1 << 20              # METADATA of the largest wheels is a few KiB
MAX_LIBRARY = 64 << 20              # libc10.so, uncompressed
ABI_MEMBER = "torch/lib/libc10.so"
CXX11_MARK = b"__cxx11"             # std::__cxx11:: in mangled names: the new (ABI 1) std::string
_CHUNK = 1 << 20
_READ_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, ValueError, KeyError,
                RuntimeError, NotImplementedError, UnicodeDecodeError)


@dataclass(frozen=True)
class WheelMetadata:
    name: str
    version: str
    requires: Tuple[str, ...] = ()          # Requires-Dist lines, markers included
    requires_python: Optional[str] = None


def metadata_to_json(meta: Optional[WheelMetadata]) -> Optional[dict]:
    return asdict(meta) if meta else None


def metadata_from_json(data: Optional[dict]) -> Optional[WheelMetadata]:
    if data is None:
        return None
    return WheelMetadata(name=str(data["name"]), version=str(data["version"]),
                         requires=tuple(str(r) for r in data["requires"]),
                         requires_python=None if data["requires_python"] is None else str(data["requires_python"]))


def read_metadata(path: Path) -> Optional[WheelMetadata]:
    """The wheel's `<name>.dist-info/METADATA`; None when there is none, it is over 1 MiB, or the
    zip cannot be read."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = next((i for i in zf.infolist() if i.filename.endswith(".dist-info/METADATA")
                         and i.filename.count("/") == 1), None)
            if info is None or info.file_size > MAX_METADATA:
                return None
            with zf.open(info) as member:
                data = member.read(MAX_METADATA + 1)
    except _READ_ERRORS:
        return None
    if len(data) > MAX_METADATA:
        return None
    message = BytesHeaderParser().parsebytes(data)
    if not message.get("Name") or not message.get("Version"):
        return None
    return WheelMetadata(name=str(message["Name"]).strip(), version=str(message["Version"]).strip(),
                         requires=tuple(str(r).strip() for r in message.get_all("Requires-Dist") or ()),
                         requires_python=str(message["Requires-Python"]).strip() if message.get("Requires-Python") else None)


def torch_abi(path: Path) -> Optional[int]:
    """The C++ ABI of a torch wheel: 1 when its `torch/lib/libc10.so` holds `__cxx11`, else 0;
    None when it has no such member (or it is over 64 MiB, or unreadable)."""
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(ABI_MEMBER)
            except KeyError:
                return None
            if info.file_size > MAX_LIBRARY:
                return None
            with zf.open(info) as member:
                return 1 if _contains(member, CXX11_MARK, MAX_LIBRARY) else 0
    except _READ_ERRORS:
        return None


def _contains(stream, mark: bytes, limit: int) -> bool:
    """Whether the first `limit` bytes of `stream` hold `mark` (also across read boundaries)."""
    tail, seen = b"", 0
    while seen < limit:
        block = stream.read(min(_CHUNK, limit - seen))
        if not block:
            return False
        if mark in tail + block:
            return True
        seen += len(block)
        tail = block[-(len(mark) - 1):]
    return False
