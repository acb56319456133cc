"""File trees of images, read on the host from `docker cp`/`podman cp` tar streams (nothing runs
in the image): path -> (type, mode, uid, gid, size, digest). The digest of a .pyc leaves out its
16-byte header (the source's mtime and size: valid in either image, since COPY keeps mtimes) and
is kept apart, because byte code may differ in marshal's reference flags without differing in
behaviour."""
import hashlib
import io
import marshal
import subprocess
import tarfile
from typing import Dict, Iterable, List, Tuple

Entry = Tuple[str, int, int, int, int, str]


def tree(binary: str, image: str, roots: Iterable[str], platform: str = "linux/arm64") -> Dict[str, Entry]:
    cid = subprocess.run([binary, "create", "--platform", platform, image, "true"], capture_output=True, text=True,
                         check=True).stdout.strip()
    out: Dict[str, Entry] = {}
    try:
        for root in roots:
            got = subprocess.run([binary, "cp", f"{cid}:{root}", "-"], capture_output=True)
            if got.returncode != 0:
                continue
            with tarfile.open(fileobj=io.BytesIO(got.stdout)) as tar:
                for member in tar:
                    name = root + ("/" + member.name.split("/", 1)[1] if "/" in member.name else "")
                    if member.isfile():
                        body = tar.extractfile(member).read()
                        digest = hashlib.sha256(body[16:] if name.endswith(".pyc") else body).hexdigest()
                        kind = "f"
                    elif member.isdir():
                        kind, digest = "d", ""
                    else:
                        kind, digest = "l", member.linkname
                    out[name] = (kind, member.mode, member.uid, member.gid, member.size, digest)
    finally:
        subprocess.run([binary, "rm", "-f", cid], capture_output=True)
    return out


def differences(a: Dict[str, Entry], b: Dict[str, Entry]) -> Dict[str, List[str]]:
    """What differs, by kind: names only in one, type/mode/owner, size or sha256 (non-.pyc), .pyc code."""
    found: Dict[str, List[str]] = {}
    for path in sorted(set(a) | set(b)):
        if path not in b:
            found.setdefault("only in the first", []).append(path)
        elif path not in a:
            found.setdefault("only in the second", []).append(path)
        else:
            (ka, ma, ua, ga, sa, da), (kb, mb, ub, gb, sb, db) = a[path], b[path]
            if (ka, ma, ua, ga) != (kb, mb, ub, gb):
                found.setdefault("type, mode or owner", []).append(f"{path}: {a[path][:4]} vs {b[path][:4]}")
            elif path.endswith(".pyc"):
                if sa != sb or da != db:
                    found.setdefault("byte code", []).append(path)
            elif ka != "d" and (sa, da) != (sb, db):
                found.setdefault("size or sha256", []).append(path)
    return found


def pyc_code(binary: str, image: str, paths: Iterable[str], platform: str = "linux/arm64") -> Dict[str, object]:
    """path -> the code object of each .pyc (the host's Python loads them: the same X.Y)."""
    cid = subprocess.run([binary, "create", "--platform", platform, image, "true"], capture_output=True, text=True,
                         check=True).stdout.strip()
    out = {}
    try:
        for path in paths:
            data = subprocess.run([binary, "cp", f"{cid}:{path}", "-"], capture_output=True, check=True).stdout
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                out[path] = marshal.loads(tar.extractfile(tar.getmembers()[0]).read()[16:])
    finally:
        subprocess.run([binary, "rm", "-f", cid], capture_output=True)
    return out


def code_differs(binary: str, fast: str, emulated: str, paths: List[str], platform: str = "linux/arm64") -> List[str]:
    """The .pyc of `paths` whose code objects (co_filename included) differ between the two images."""
    a, b = pyc_code(binary, fast, paths, platform), pyc_code(binary, emulated, paths, platform)
    return [p for p in paths if a[p] != b[p] or a[p].co_filename != b[p].co_filename]
