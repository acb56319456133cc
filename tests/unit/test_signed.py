"""Official signed zips: recognised by their contents, verified with openssl against the trusted
roots and the CRL, unpacked once into .ascend-build/unpacked/, the inner .run delivered."""
import shutil
import zipfile
from pathlib import Path

import pytest

from ascend_build.catalog import signed
from ascend_build.catalog.view import to_json
from ascend_build.catalog.problems import CERTIFICATE_REVOKED, SIGNATURE_INVALID, ZIP_NOT_OFFICIAL, ZIP_TOO_LARGE
from ascend_build.demo import standins

from test_check import FILL, errors, run

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl missing")


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return standins.make_ca(tmp_path_factory.mktemp("ca"))


def signed_set(root: Path, ca) -> Path:
    work = root / "work"
    standins.generate(work / "packages", cann="8.5.0", arch="x86_64", chip="910b", fill=FILL, signed_by=ca)
    shutil.copy(ca.root, work / "test-root.pem")
    return work


def toolkit_zip(work: Path) -> Path:
    return next((work / "packages").glob("Ascend-cann-toolkit_*.zip"))


def rewrite(zip_path: Path, change) -> None:
    """Rewrite the zip with `change(name, data) -> data` applied to each member."""
    with zipfile.ZipFile(zip_path) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(zip_path, "w") as zf:
        for name, data in members:
            zf.writestr(name, change(name, data))


def test_verified_zip_delivers_the_inner_run(tmp_path, ca):
    work = signed_set(tmp_path, ca)
    selection = run(work, "cann", trusted_roots=["test-root.pem"])
    assert selection.ok, selection.problems
    toolkit = selection.find("toolkit")[0]
    assert toolkit.name == "Ascend-cann-toolkit_8.5.0_linux-x86_64.run" and toolkit.format == "run"
    assert toolkit.path.is_file() and toolkit.path.parent.parent.name == "unpacked" and toolkit.sha256
    assert toolkit.source.file == f"packages/{toolkit_zip(work).name}"
    row = next(p for p in to_json(selection)["packages"] if p["component"] == "toolkit")
    assert row["signature"] == "verified (test-root)" and row["from"] == toolkit.source.file
    unpacked = toolkit.path.stat().st_mtime_ns
    again = run(work, "cann", trusted_roots=["test-root.pem"]).find("toolkit")[0]
    assert again.path == toolkit.path and again.path.stat().st_mtime_ns == unpacked      # unpacked once


def test_without_the_root_the_signature_is_refused(tmp_path, ca):
    selection = run(signed_set(tmp_path, ca), "cann")
    bad = [p for p in selection.problems if p.code == SIGNATURE_INVALID]
    assert bad and not selection.ok and "Huawei_Integrity_Root_CA_G2" in bad[0].message
    assert "trusted_roots" in bad[0].fix


def test_a_flipped_byte_in_the_inner_run_is_refused(tmp_path, ca):
    work = signed_set(tmp_path, ca)

    def flip(name, data):
        if name.endswith(".run"):
            data = bytearray(data)
            data[len(data) // 2] ^= 1
        return bytes(data)
    rewrite(toolkit_zip(work), flip)
    selection = run(work, "cann", trusted_roots=["test-root.pem"])
    assert SIGNATURE_INVALID in errors(selection)


def test_an_unknown_ca_is_refused(tmp_path, ca):
    other = standins.make_ca(tmp_path / "other", name="someone else")
    work = signed_set(tmp_path, other)
    shutil.copy(ca.root, work / "test-root.pem")
    assert errors(run(work, "cann", trusted_roots=["test-root.pem"])) == {SIGNATURE_INVALID}


def test_a_revoked_signer_is_refused(tmp_path):
    revoked = standins.make_ca(tmp_path / "revoked")
    revoked.revoke_signer()
    work = signed_set(tmp_path, revoked)
    selection = run(work, "cann", trusted_roots=["test-root.pem"])
    assert CERTIFICATE_REVOKED in errors(selection)
    assert "revokes" in next(p.message for p in selection.problems if p.code == CERTIFICATE_REVOKED)


def test_a_zip_without_signature_or_with_another_package(tmp_path, ca):
    work = signed_set(tmp_path, ca)
    path = toolkit_zip(work)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Ascend-cann-toolkit_8.3.RC1_linux-x86_64.run", b"x")
    assert ZIP_NOT_OFFICIAL in errors(run(work, "cann", trusted_roots=["test-root.pem"]))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Ascend-cann-toolkit_8.5.0_linux-x86_64.run", b"x")
    assert SIGNATURE_INVALID in errors(run(work, "cann", trusted_roots=["test-root.pem"]))


def test_a_zip_bomb_is_refused(tmp_path, ca):
    work = signed_set(tmp_path, ca)
    with zipfile.ZipFile(toolkit_zip(work), "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Ascend-cann-toolkit_8.5.0_linux-x86_64.run", b"\0" * (signed.SLACK + (1 << 20)))
        zf.writestr("Ascend-cann-toolkit_8.5.0_linux-x86_64.run.cms", b"x")
    selection = run(work, "cann", trusted_roots=["test-root.pem"])
    assert ZIP_TOO_LARGE in errors(selection)
    assert not list((work / ".ascend-build" / "unpacked").glob("*/Ascend-cann-toolkit*"))


def test_a_run_is_shown_unsigned(tmp_path):
    from test_check import make_set
    rows = to_json(run(make_set(tmp_path), "cann"))["packages"]
    assert {p["signature"] for p in rows if p["component"] == "toolkit"} == {signed.UNSIGNED}


def test_huawei_roots_are_shipped():
    roots = signed.huawei_roots()
    assert [r.name for r in roots] == ["Huawei_Integrity_Root_CA_G2", "Huawei_Software_Integriry_Protection_Root_CA"]
    assert all(r.path.read_text().startswith("-----BEGIN CERTIFICATE-----") for r in roots)


def test_init_demo_signed_writes_zips_and_trusts_its_demo_root(tmp_path):
    from clirun import cli
    work = tmp_path / "d"
    done = cli("init", "--demo", work, "--signed", "--arch", "x86_64", "--filler", "4KiB")
    assert done.returncode == 0, done.stderr
    assert len(list((work / "packages").glob("Ascend-cann-*.zip"))) == 3 and not list((work / "packages").glob("Ascend-cann-*.run"))
    assert "trusted_roots: [demo-root.pem]" in (work / "ascend-build.yaml").read_text()
    done = cli("check", "-C", work, "--target", "cann", "--platform", "x86_64", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified (demo-root)" in done.stdout
    done = cli("init", "--signed", tmp_path / "e")
    assert done.returncode != 0 and "--demo" in done.stderr


def test_a_nested_zip_delivers_its_run(tmp_path, ca):
    work = signed_set(tmp_path, ca)
    outer = toolkit_zip(work)
    with zipfile.ZipFile(outer) as zf:
        run_name = next(n for n in zf.namelist() if n.endswith(".run"))
        run_bytes = zf.read(run_name)
    nested = tmp_path / outer.name
    with zipfile.ZipFile(nested, "w") as zf:
        zf.writestr(run_name, run_bytes)
    cms = ca.sign(nested)
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(nested, f"inner/{nested.name}")
        zf.write(cms, f"inner/{cms.name}")
        zf.write(ca.crl, "ascend.crl")
    standins.vouch_for_official_names([outer])    # a stand-in under a name Huawei publishes
    selection = run(work, "cann", trusted_roots=["test-root.pem"])
    assert selection.ok, selection.problems
    toolkit = selection.find("toolkit")[0]
    assert toolkit.name == run_name and toolkit.path.read_bytes() == run_bytes
    assert [p.name for p in toolkit.path.parent.iterdir() if p.name != signed.VERDICT] == [run_name]


def test_unpacked_copies_of_zips_gone_or_replaced_are_removed(tmp_path, ca):
    work = signed_set(tmp_path, ca)
    state = work / ".ascend-build" / "unpacked"
    first = run(work, "cann", trusted_roots=["test-root.pem"])
    folder = {p.source.file: p.path.parent for p in first.delivered() if p.source}
    toolkit, others = f"packages/{toolkit_zip(work).name}", [f for f in folder if "toolkit" not in f]
    assert others and all(f.is_dir() for f in folder.values())
    assert run(work, "base", trusted_roots=["test-root.pem"]).ok
    assert all(f.is_dir() for f in folder.values())                  # zips still here, not checked: kept
    renamed = work / Path(others[-1]).name                               # the same bytes under another path
    (work / others[-1]).rename(renamed)
    inner = next(p for p in folder[others[-1]].iterdir() if p.suffix == ".run")
    unpacked = inner.stat().st_mtime_ns
    assert run(work, "cann", trusted_roots=["test-root.pem"]).ok
    assert inner.stat().st_mtime_ns == unpacked                        # not unpacked again
    assert run(work, "base", trusted_roots=["test-root.pem"]).ok and inner.is_file()   # known by its new name
    renamed.rename(work / others[-1])
    assert run(work, "cann", trusted_roots=["test-root.pem"]).ok and inner.is_file()
    with zipfile.ZipFile(work / toolkit, "a") as zf:
        zf.comment = b"downloaded again"                               # same name, other bytes
    (work / others[0]).unlink()
    again = run(work, "cann", trusted_roots=["test-root.pem"])
    assert not folder[toolkit].exists() and not folder[others[0]].exists()
    assert again.find("toolkit")[0].path.is_file() and folder[others[-1]].is_dir()
    assert sorted(p.name for p in state.iterdir()) == sorted(p.source.sha256 for p in again.delivered() if p.source)
