"""Building for another arch runs the image's programs under QEMU: check binfmt_misc first, so a
missing emulator is one message with the fix, not `exec format error` deep in the build log."""
import os
from pathlib import Path
from typing import Optional

from ..errors import EngineError
from ..platforms import host_arch

BINFMT = Path(os.environ.get("ASCEND_BUILD_BINFMT", "/proc/sys/fs/binfmt_misc"))   # another folder: tests
QEMU_NAMES = {"aarch64": "qemu-aarch64", "x86_64": "qemu-x86_64"}
def emulation_problem(arch: str, host: Optional[str] = None, binfmt: Optional[Path] = None) -> Optional[str]:
    """None when this host can run `arch` programs (its own arch, or QEMU registered and enabled
    in binfmt_misc), else what is missing."""
    host = host or host_arch()
    if arch == host:
        return None
    binfmt = binfmt or BINFMT
    entry = binfmt / QEMU_NAMES.get(arch, f"qemu-{arch}")
    try:
        lines = entry.read_text().splitlines()
    except OSError:
        if not (binfmt / "status").exists():
            return f"binfmt_misc is not mounted at {binfmt}"
        return f"no QEMU emulator for {arch} is registered in binfmt_misc ({entry} is missing)"
    if not lines or lines[0].strip() != "enabled":
        return f"the QEMU emulator for {arch} is registered but disabled ({entry})"
    return None


def check_emulation(arch: str, host: Optional[str] = None, binfmt: Optional[Path] = None) -> None:
    """EngineError with the fix when an image for `arch` cannot run its build steps here."""
    problem = emulation_problem(arch, host, binfmt)
    if problem:
        raise EngineError(f"building for {arch} on this {host or host_arch()} host needs QEMU: {problem}",
                          fix="install it: `sudo apt-get install -y qemu-user-static` (Debian/Ubuntu; it registers "
                              "itself in binfmt_misc), or `docker run --privileged --rm tonistiigi/binfmt --install "
                              f"{'arm64' if arch == 'aarch64' else 'amd64'}`; then build again")
