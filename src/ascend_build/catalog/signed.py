"""Official signed zips (ascend-reference.md §10): Huawei ships each CANN package as a `.zip`
holding the inner package (a `.run`, sometimes a nested `.zip`), `<inner>.cms` (a DER CMS
signature over the inner file) and a `.crl`. `check` verifies them as Huawei's installer does,

    openssl cms -verify -no_check_time -in X.cms -inform DER -CAfile ROOT.pem -binary -content X -purpose any

against Huawei's public roots (roots/*.pem) and the config's `trusted_roots`, checks that the CRL
is signed by that root and does not revoke the signer, and unpacks the inner package once into
`.ascend-build/unpacked/<sha256 of the zip>/` (reused while the zip is unchanged; removed once the
zip is gone or replaced). The build then delivers the inner package."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..workdir import STATE_DIR
from .model import Package, Problem
from .naming import identify
from .problems import (CERTIFICATE_REVOKED, SIGNATURE_INVALID, ZIP_NOT_OFFICIAL, ZIP_TOO_LARGE)

UNPACKED = "unpacked"
MAX_MEMBERS = 64                 # an official zip holds a handful of files
SLACK = 64 << 20                 # what unpacking may add to the zip's own size (the inner files are compressed already)
VERDICT = "verdict.json"
UNSIGNED = "unsigned (.run as downloaded)"
SIGNED_COMPONENTS = ("toolkit", "nnrt", "nnae", "kernels", "ops", "nnal", "toolbox")
OPENSSL_TIMEOUT = 600


@dataclass(frozen=True)
class Root:
    name: str                    # the file's stem, e.g. Huawei_Integrity_Root_CA_G2
    path: Path


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def huawei_roots() -> List[Root]:
    """Huawei's two public roots, in the order Huawei's installer tries them."""
    folder = Path(str(resources.files(__package__).joinpath("roots")))
    order = ("Huawei_Integrity_Root_CA_G2.pem", "Huawei_Software_Integriry_Protection_Root_CA.pem")
    return [Root(Path(name).stem, folder / name) for name in order]


def trusted_roots(workdir: Path, extra: Sequence[str]) -> List[Root]:
    """Huawei's roots, then the config's `trusted_roots` (paths in the working directory)."""
    return huawei_roots() + [Root(Path(rel).stem, Path(workdir) / rel) for rel in extra]


def signature_of(pkg: Package) -> Optional[str]:
    """What `check` shows in the signature column: `verified (<root>)` for an unpacked zip,
    `unsigned (.run as downloaded)` for a CANN `.run`, None for other files."""
    if pkg.signature:
        return pkg.signature
    return UNSIGNED if pkg.component in SIGNED_COMPONENTS and pkg.format == "run" else None


def _openssl(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=OPENSSL_TIMEOUT)
    except FileNotFoundError:
        raise Refused(SIGNATURE_INVALID, "openssl is not installed, so the signature cannot be checked") from None
    except subprocess.TimeoutExpired:
        raise Refused(SIGNATURE_INVALID, "openssl took too long to check the signature") from None


def _last_line(text: str) -> str:
    """openssl's reason without its error-stack prefix (`...:Verify error: unable to get local issuer certificate`)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "no reason given"
    line = lines[-1]
    return line.split("Verify error:", 1)[1].strip() if "Verify error:" in line else line.rsplit(":", 1)[-1].strip() or line


def verify_cms(content: Path, cms: Path, roots: Sequence[Root]) -> Root:
    """The first root the signature verifies against; Refused with openssl's reason otherwise."""
    reason = "no trusted root"
    for root in roots:
        if not root.path.is_file():
            continue
        done = _openssl("cms", "-verify", "-no_check_time", "-in", str(cms), "-inform", "DER", "-CAfile", str(root.path),
                        "-binary", "-content", str(content), "-purpose", "any", "-out", os.devnull)
        if done.returncode == 0:
            return root
        reason = _last_line(done.stderr)
    raise Refused(SIGNATURE_INVALID, f"the signature of {content.name} does not verify against any trusted root "
                                     f"({', '.join(r.name for r in roots)}): {reason}")


def _serials(text: str, pattern: str) -> set:
    return {m.group(1).upper().lstrip("0") for m in re.finditer(pattern, text)}


def check_crl(crl: Path, cms: Path, root: Root) -> None:
    """The CRL is signed by `root` and revokes none of the certificates in the signature."""
    form = "DER" if not crl.read_bytes()[:11] == b"-----BEGIN " else "PEM"
    signed = _openssl("crl", "-in", str(crl), "-inform", form, "-CAfile", str(root.path), "-noout")
    if signed.returncode != 0 or "verify OK" not in signed.stderr + signed.stdout:
        raise Refused(CERTIFICATE_REVOKED, f"{crl.name} is not a CRL signed by {root.name}: {_last_line(signed.stderr)}")
    revoked = _serials(_openssl("crl", "-in", str(crl), "-inform", form, "-noout", "-text").stdout,
                       r"Serial Number:\s*([0-9A-Fa-f]+)")
    certs = _openssl("pkcs7", "-inform", "DER", "-in", str(cms), "-print_certs").stdout
    serials = set()
    for pem in re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", certs, re.S):
        out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, capture_output=True, text=True).stdout
        serials |= _serials(out, r"serial=([0-9A-Fa-f]+)")
    if serials & revoked:
        raise Refused(CERTIFICATE_REVOKED, f"{crl.name} revokes the certificate that signed the package "
                                           f"(serial {', '.join(sorted(serials & revoked))})")


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: List[int]) -> Path:
    """One member into `dest`, never more bytes than it announces or the budget left."""
    if info.file_size > budget[0]:
        raise Refused(ZIP_TOO_LARGE, f"{info.filename} unpacks to {info.file_size} bytes, more than the zip can hold")
    out_path = dest / Path(info.filename).name
    written = 0
    with zf.open(info) as src, open(out_path, "wb") as out:
        for block in iter(lambda: src.read(1 << 20), b""):
            written += len(block)
            if written > info.file_size or written > budget[0]:
                raise Refused(ZIP_TOO_LARGE, f"{info.filename} unpacks to more than it announces")
            out.write(block)
    budget[0] -= written
    return out_path


def _members(zf: zipfile.ZipFile, outer: str) -> Tuple[zipfile.ZipInfo, Optional[zipfile.ZipInfo], Optional[zipfile.ZipInfo]]:
    """(inner package, its .cms, a .crl) of an official zip."""
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_MEMBERS:
        raise Refused(ZIP_NOT_OFFICIAL, f"{outer} holds {len(infos)} files, not an official package zip")
    by_name = {Path(i.filename).name: i for i in infos}
    inner = [i for name, i in by_name.items() if name.endswith((".run", ".zip"))]
    if len(inner) != 1:
        raise Refused(ZIP_NOT_OFFICIAL, f"{outer} holds {len(inner)} packages (.run/.zip), not one")
    name = Path(inner[0].filename).name
    crls = [i for n, i in by_name.items() if n.endswith(".crl")]
    return inner[0], by_name.get(f"{name}.cms"), crls[0] if crls else None


def _matches(outer: Package, inner_name: str) -> bool:
    found = identify(inner_name)
    return bool(found) and (found.component, found.version, found.arch, found.chip) == (
        outer.component, outer.version, outer.arch, outer.chip)


def unpack(zip_path: Path, outer: Package, dest: Path, roots: Sequence[Root], depth: int = 0) -> Tuple[Path, Optional[str]]:
    """Unpack and verify one zip into `dest`: (the inner .run, the root that verified it)."""
    budget = [zip_path.stat().st_size + SLACK]
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Refused(ZIP_NOT_OFFICIAL, f"{zip_path.name} is not a readable zip: {exc}") from None
    with zf:
        inner, cms, crl = _members(zf, zip_path.name)
        name = Path(inner.filename).name
        if not _matches(outer, name):
            raise Refused(ZIP_NOT_OFFICIAL, f"{zip_path.name} holds {name}, which is not the same package")
        if depth == 0 and cms is None:
            raise Refused(SIGNATURE_INVALID, f"{zip_path.name} holds no {name}.cms signature")
        try:
            inner_path = _extract(zf, inner, dest, budget)
            cms_path = _extract(zf, cms, dest, budget) if cms else None
            crl_path = _extract(zf, crl, dest, budget) if crl else None
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
            raise Refused(ZIP_NOT_OFFICIAL, f"{zip_path.name} cannot be unpacked: {exc}") from None
    root = None                  # a nested zip needs no signature of its own: the outer one covers it
    if cms_path:
        root = verify_cms(inner_path, cms_path, roots)
        if crl_path:
            check_crl(crl_path, cms_path, root)
    if name.endswith(".zip"):
        if depth > 0:
            raise Refused(ZIP_NOT_OFFICIAL, f"{zip_path.name}: zips nested more than once")
        nested, _ = unpack(inner_path, outer, dest, roots, depth + 1)
        inner_path.unlink()
        inner_path = nested
    return inner_path, root.name if root else None


def _roots_digest(roots: Sequence[Root]) -> str:
    digest = hashlib.sha256()
    for root in roots:
        digest.update(root.name.encode() + b"\0" + (root.path.read_bytes() if root.path.is_file() else b""))
    return digest.hexdigest()


def _problem(code: str, pkg: Package, message: str) -> Problem:
    fix = ("download it again from Huawei's repository" if code != SIGNATURE_INVALID else
           "download it again from Huawei's repository; a package signed by your own CA needs that CA in `trusted_roots:`")
    return Problem(level="error", code=code, file=pkg.file, message=f"{pkg.file}: {message}", fix=fix)


def unpack_zip(workdir: Path, pkg: Package, roots: Sequence[Root]) -> Tuple[Optional[Package], List[Problem]]:
    """The inner package of the official zip `pkg` (already hashed), unpacked and verified once
    (the verdict is kept next to it for these roots); or None and the reason."""
    state = Path(workdir) / STATE_DIR / UNPACKED
    folder = state / pkg.sha256
    digest = _roots_digest(roots)
    try:
        verdict = json.loads((folder / VERDICT).read_text())
    except (OSError, ValueError):
        verdict = None
    if not (isinstance(verdict, dict) and verdict.get("roots") == digest and isinstance(verdict.get("inner"), str)
            and (folder / verdict["inner"]).is_file()):
        try:
            state.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=state))
            try:
                inner, root = unpack(pkg.path, pkg, work, roots)
                for extra in work.iterdir():
                    if extra != inner:
                        extra.unlink()
                verdict = {"inner": inner.name, "root": root, "roots": digest, "zip": pkg.file}
                (work / VERDICT).write_text(json.dumps(verdict))
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(work, folder)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        except Refused as refused:
            return None, [_problem(refused.code, pkg, refused.message)]
        except OSError as exc:
            return None, [_problem(ZIP_NOT_OFFICIAL, pkg, f"cannot be unpacked into {state}: {exc.strerror or exc}")]
    elif verdict.get("zip") != pkg.file:             # the same bytes under another name: what prune() reads
        try:
            (folder / VERDICT).write_text(json.dumps({**verdict, "zip": pkg.file}))
        except OSError:
            pass
    rel = f"{STATE_DIR}/{UNPACKED}/{pkg.sha256}/{verdict['inner']}"
    path = folder / verdict["inner"]
    return replace(pkg, path=path, file=rel, format="run", size=path.stat().st_size, sha256=None, source=pkg,
                   signature=f"verified ({verdict['root']})"), []


def unpack_zips(workdir: Path, packages: List[Package], roots: Sequence[Root]) -> Tuple[Dict[str, Package], List[Problem]]:
    """zip file -> its inner package, for every hashed `.zip` among `packages`; the problems."""
    inner: Dict[str, Package] = {}
    problems: List[Problem] = []
    for pkg in packages:
        if pkg.format == "zip" and pkg.sha256:
            found, why = unpack_zip(workdir, pkg, roots)
            problems += why
            if found:
                inner[pkg.file] = found
    prune(Path(workdir), {pkg.sha256: pkg.file for pkg in packages if pkg.format == "zip" and pkg.sha256})
    return inner, problems


def prune(workdir: Path, current: Dict[str, str]) -> None:
    """Remove the unpacked copies (GBs for a toolkit) of zips that are gone from the working
    directory or were replaced under their name; `current`: sha256 -> file of the zips just
    checked. A copy of a zip still here but not checked this time is kept."""
    state = workdir / STATE_DIR / UNPACKED
    replaced = set(current.values())
    try:
        folders = list(state.iterdir()) if state.is_dir() else []
    except OSError:
        return                                        # pruning is housekeeping: never a failure
    for folder in folders:
        if folder.name.startswith(".") or folder.name in current:
            continue                                  # in the making by another run, or in use
        try:
            zip_file = json.loads((folder / VERDICT).read_text()).get("zip")
        except (OSError, ValueError, AttributeError):
            zip_file = None                           # never finished: nothing to keep
        if not isinstance(zip_file, str) or zip_file in replaced or not (workdir / zip_file).is_file():
            shutil.rmtree(folder, ignore_errors=True)
