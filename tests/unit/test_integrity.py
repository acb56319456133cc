"""Integrity without running package code: makeself header fields, wheel CRC + RECORD, tar.gz
stream, checksum files; one read per file."""
import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from ascend_build.catalog import integrity
from ascend_build.catalog.checksums import compare_expected, hash_file, load_checksums
from ascend_build.catalog.integrity import check_run, check_targz, check_wheel, verify_file
from ascend_build.demo import standins

FILL = 4096


def codes(result) -> list:
    return [(p.level, p.code) for p in result.problems]


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def makeself(path: Path, payloads, sums="sha256", head_style="skip", trailing=b"") -> Path:
    """A minimal makeself-like file: `skip` header lines, filesizes, SHA/MD5, then the payloads."""
    sizes = " ".join(str(len(p)) for p in payloads)
    sha = " ".join(hashlib.sha256(p).hexdigest() for p in payloads) if sums == "sha256" else "0" * 64
    md5 = " ".join(hashlib.md5(p).hexdigest() for p in payloads) if sums == "md5" else "0" * 32
    lines = ["#!/bin/sh", f'filesizes="{sizes}"', f'SHA="{sha}"', f'MD5="{md5}"', "", "exit 0"]
    skip = len(lines) + 1
    lines.insert(1, f'skip="{skip}"' if head_style == "skip" else f'offset=`head -n {skip} "$0" | wc -c`')
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"".join(payloads) + trailing)
    return path


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory):
    dest = tmp_path_factory.mktemp("pkgs")
    paths = standins.generate(dest, cann="8.0.RC2", fill=FILL)
    return dict(zip(["toolkit", "kernels", "nnal", "torch", "torch_npu", "mindie", "atb"], paths))


def test_good_files_pass_and_hash_equals_sha256(pkgs, tmp_path):
    for path in pkgs.values():
        result = verify_file(path, path.name, "wheel" if path.suffix == ".whl" else
                             "tar.gz" if path.name.endswith(".tar.gz") else "run")
        assert result.problems == [], path.name
        assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == hash_file(path)


def test_truncated_run(pkgs, tmp_path):
    path = tmp_path / pkgs["toolkit"].name
    path.write_bytes(pkgs["toolkit"].read_bytes()[:-100])
    assert codes(check_run(path, path.name)) == [("error", "run-truncated")]
    path.write_bytes(b"")
    assert codes(check_run(path, path.name)) == [("error", "run-truncated")]


def test_altered_run_payload(pkgs, tmp_path):
    path = tmp_path / pkgs["toolkit"].name
    path.write_bytes(pkgs["toolkit"].read_bytes())
    flip(path, path.stat().st_size - 10)
    assert codes(check_run(path, path.name)) == [("error", "run-corrupt")]


def test_run_without_header_fields_is_a_warning(tmp_path):
    path = tmp_path / "x.run"
    path.write_bytes(b"#!/bin/sh\necho hello\nexit 0\n")
    assert codes(check_run(path, "x.run")) == [("warning", "run-unverified")]


def test_run_size_only_and_trailing_data(tmp_path):
    path = makeself(tmp_path / "a.run", [b"payload"], sums="none", trailing=b"extra")
    assert codes(check_run(path, "a.run")) == [("warning", "run-unverified"), ("warning", "run-trailing-data")]


@pytest.mark.parametrize("style", ["skip", "head"])
@pytest.mark.parametrize("sums", ["sha256", "md5"])
def test_run_several_archives(tmp_path, style, sums):
    path = makeself(tmp_path / "a.run", [b"first" * 1000, b"second" * 3000], sums=sums, head_style=style)
    assert check_run(path, "a.run").problems == []
    flip(path, path.stat().st_size - 1)
    assert codes(check_run(path, "a.run")) == [("error", "run-corrupt")]


def test_run_is_read_once(pkgs, monkeypatch):
    """The whole-file sha256 and the payload digest come from one pass over the file."""
    read = []
    real_open = open

    class Counting(io.FileIO):
        def readinto(self, b):
            n = super().readinto(b)
            read.append(n or 0)
            return n

    def counting_open(path, mode="r", *args, **kwargs):
        return Counting(path, "rb") if "b" in mode else real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(integrity, "open", counting_open, raising=False)
    path = pkgs["toolkit"]
    assert check_run(path, path.name).problems == []
    assert sum(read) == path.stat().st_size


def test_wheel_flipped_byte(pkgs, tmp_path):
    source = pkgs["torch"]
    with zipfile.ZipFile(source) as zf:
        info = zf.getinfo("torch/standin-filler.bin")
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    flip(path, info.header_offset + 30 + len(info.filename) + 100)     # inside the member's data
    assert codes(check_wheel(path, path.name)) == [("error", "wheel-corrupt")]


def test_wheel_record_mismatch_and_missing_record(tmp_path):
    name, data = standins.build_wheel("demo", "1.0", ("py3", "none", ["any"]), {"demo/__init__.py": b"x = 1\n"})
    path = tmp_path / name
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, b"x = 2\n" if item.filename == "demo/__init__.py" else src.read(item))
    path.write_bytes(out.getvalue())
    result = check_wheel(path, name)
    assert codes(result) == [("error", "wheel-corrupt")] and "RECORD" in result.problems[0].message
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        dst.writestr("demo/__init__.py", b"")
    path.write_bytes(out.getvalue())
    assert codes(check_wheel(path, name)) == [("error", "wheel-corrupt")]
    path.write_bytes(data[: len(data) // 2])
    assert codes(check_wheel(path, name)) == [("error", "wheel-corrupt")]


def test_targz_truncated_and_altered(pkgs, tmp_path):
    source = pkgs["atb"]
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes()[:-20])
    assert codes(check_targz(path, path.name)) == [("error", "tarball-corrupt")]
    path.write_bytes(source.read_bytes())
    flip(path, path.stat().st_size // 2)
    result = check_targz(path, path.name)
    assert codes(result) == [("error", "tarball-corrupt")]
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_targz_several_gzip_members(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    data = raw.getvalue()
    path = tmp_path / "x.tar.gz"
    path.write_bytes(gzip.compress(data[:1024]) + gzip.compress(data[1024:]))
    assert check_targz(path, "x.tar.gz").problems == []


def test_checksum_files_win(pkgs, tmp_path):
    path = tmp_path / pkgs["toolkit"].name
    path.write_bytes(pkgs["toolkit"].read_bytes())
    flip(path, path.stat().st_size - 10)                 # the header check would fail...
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  {path.name}\n")
    assert load_checksums(tmp_path)[0][path.name] == ("0" * 64, "SHA256SUMS")
    (tmp_path / f"{path.name}.sha256").write_text(f"{digest}  {path.name}\n")   # ...but the .sha256 wins
    expected = load_checksums(tmp_path, "packages/")[0][path.name]
    assert expected == (digest, f"packages/{path.name}.sha256")
    result = verify_file(path, path.name, "run", expected)
    assert result.problems == [] and result.sha256 == digest
    assert [p.code for p in compare_expected(path.name, result.sha256, ("0" * 64, "SHA256SUMS"))] == ["checksum-mismatch"]


def test_bsd_style_sums(tmp_path):
    (tmp_path / "SHA256SUMS").write_text(f"SHA256 (dir/a.run) = {'a' * 64}\n")
    assert load_checksums(tmp_path)[0] == {"a.run": ("a" * 64, "SHA256SUMS")}


def test_unreadable(tmp_path):
    result = verify_file(tmp_path / "gone.run", "gone.run", "run")
    assert result.sha256 is None and codes(result) == [("error", "unreadable")]
