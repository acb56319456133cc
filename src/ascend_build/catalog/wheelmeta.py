"""What a wheel says of itself, read with bounded reads: its METADATA (name, version,
Requires-Dist, Requires-Python) and, for torch, the C++ ABI of its libraries.

A wheel that cannot be read gives None here: the integrity check reports why."""
import lzma
import re
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
_C10_SYMBOL = re.compile(rb"_Z[\x21-\x7e]{0,16}?3c10")   # a mangled name in namespace c10
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


_EXTENSION_ARCH = re.compile(r"\.cpython-\d+[a-z]*-(?P<arch>[a-z0-9_]+)-linux-gnu\.so$")


def binary_arch(path: Path) -> Optional[str]:
    """The arch of the extension modules a wheel holds, read from their names
    (`.cpython-311-aarch64-linux-gnu.so`): a wheel tagged `any` may carry them (a public
    `cp311-none-any` wheel holding aarch64 code). None: none, several arches, or unreadable."""
    try:
        with zipfile.ZipFile(path) as zf:
            arches = {m.group("arch") for m in map(_EXTENSION_ARCH.search, zf.namelist()) if m}
    except _READ_ERRORS:
        return None
    return arches.pop() if len(arches) == 1 else None


def torch_abi(path: Path) -> Optional[int]:
    """The C++ ABI of a torch wheel from its `torch/lib/libc10.so`
    (library_abi); None when it has no such member (or it is over 64 MiB, or unreadable)."""
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                info = zf.getinfo(ABI_MEMBER)
            except KeyError:
                return None
            if info.file_size > MAX_LIBRARY:
                return None
            with zf.open(info) as member:
                data = member.read(MAX_LIBRARY + 1)
    except _READ_ERRORS:
        return None
    return library_abi(data) if len(data) <= MAX_LIBRARY else None


def library_abi(data: bytes) -> int:
    """1 when a c10 symbol of the library names `std::__cxx11` (the new std::string), 0 when its
    c10 symbols name none; a library without c10 symbols: 1 when `__cxx11` is anywhere in it.
    (Only c10's own symbols count: pieces of libstdc++ linked in bring `__cxx11` names into ABI-0
    libraries too, as in the public torch 2.1.0 wheels for x86_64 and aarch64.)"""
    if not _C10_SYMBOL.search(data):
        return 1 if CXX11_MARK in data else 0
    for found in re.finditer(re.escape(CXX11_MARK), data):
        start, end = found.start(), found.end()
        while start > 0 and 0x21 <= data[start - 1] <= 0x7E:
            start -= 1
        while end < len(data) and 0x21 <= data[end] <= 0x7E:
            end += 1
        if b"3c10" in data[start:end]:
            return 1
    return 0
