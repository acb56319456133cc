"""Integrity without running package code: makeself header fields, wheel CRC + RECORD, tar.gz
stream, checksum files; one read per file."""
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_sha256_file_wins_over_sha256sums(pkgs, tmp_path):
    path = tmp_path / pkgs["toolkit"].name
    path.write_bytes(pkgs["toolkit"].read_bytes())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  {path.name}\n")
    assert load_checksums(tmp_path)[0][path.name] == ("0" * 64, "SHA256SUMS")
    (tmp_path / f"{path.name}.sha256").write_text(f"{digest}  {path.name}\n")   # the .sha256 wins
    expected = load_checksums(tmp_path, "packages/")[0][path.name]
    assert expected == (digest, f"packages/{path.name}.sha256")
    assert [p.code for p in compare_expected(path.name, digest, ("0" * 64, "SHA256SUMS"))] == ["checksum-mismatch"]


def test_bsd_style_sums(tmp_path):
    (tmp_path / "SHA256SUMS").write_text(f"SHA256 (dir/a.run) = {'a' * 64}\n")
    assert load_checksums(tmp_path)[0] == {"a.run": ("a" * 64, "SHA256SUMS")}


def test_unreadable(tmp_path):
    result = verify_file(tmp_path / "gone.run", "gone.run", "run")
    assert result.sha256 is None and codes(result) == [("error", "unreadable")]


# -- bounded memory and no traceback on hostile files ---------------------------------------------

# The child's own peak: VmHWM belongs to its address space (ru_maxrss would carry the forking
# test process's size across exec on Linux, so it depends on what ran before).
BOMB_CHECK = """
import json, re, sys
from pathlib import Path
from ascend_build.catalog.integrity import verify_file
path = Path(sys.argv[1])
result = verify_file(path, path.name, sys.argv[2])
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(json.dumps({"codes": [p.code for p in result.problems], "maxrss_kib": peak}))
"""


def check_in_subprocess(path: Path, fmt: str) -> dict:
    result = subprocess.run([sys.executable, "-c", BOMB_CHECK, str(path), fmt], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def test_record_bomb_stays_under_200_mb(tmp_path):
    path = tmp_path / "bomb-1.0-py3-none-any.whl"
    chunk = b"a" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("bomb/__init__.py", b"")
        with zf.open("bomb-1.0.dist-info/RECORD", "w", force_zip64=True) as member:
            for _ in range(512):
                member.write(chunk)
    assert path.stat().st_size < 1 << 20
    found = check_in_subprocess(path, "wheel")
    assert found["codes"] == ["metadata-too-large"]
    assert found["maxrss_kib"] < 200 * 1024, found


def test_tar_long_name_bomb_stays_under_200_mb(tmp_path):
    path = tmp_path / "Ascend-mindie-atb-models_1.0.0_linux-x86_64_torch2.1.0-abi0.tar.gz"
    size = 600 << 20
    header = tarfile.TarInfo("././@LongLink")
    header.type, header.size = tarfile.GNUTYPE_LONGNAME, size
    chunk = b"a" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(header.tobuf(tarfile.GNU_FORMAT))
        for _ in range(size >> 20):
            out.write(chunk)
        member = tarfile.TarInfo("x")
        out.write(member.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024)
    assert path.stat().st_size < 1 << 20
    found = check_in_subprocess(path, "tar.gz")
    assert found["codes"] == ["metadata-too-large"]
    assert found["maxrss_kib"] < 200 * 1024, found


def test_pax_header_over_the_cap(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.txt")
        info.pax_headers = {"comment": "x" * (2 << 20)}
        tar.addfile(info, io.BytesIO(b""))
    path = tmp_path / "x.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    assert codes(check_targz(path, "x.tar.gz")) == [("error", "metadata-too-large")]


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_tar_formats_long_names_links_and_big_sizes_pass(tmp_path, fmt):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tar:
        for name, data in (("d" * 80 + "/" + "n" * 90 if fmt != tarfile.USTAR_FORMAT else "short", b"x" * 1000),
                           ("empty", b""), ("f" * 30, b"y" * 513)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "l" * (200 if fmt != tarfile.USTAR_FORMAT else 10)
        tar.addfile(link)
        folder = tarfile.TarInfo("dir/")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    path = tmp_path / "x.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    assert check_targz(path, "x.tar.gz").problems == []
    path.write_bytes(gzip.compress(raw.getvalue()[:-2048][:3000]))          # ends inside a member
    assert codes(check_targz(path, "x.tar.gz")) == [("error", "tarball-corrupt")]


def test_pax_size_overrides_the_header_size(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 700
        info.pax_headers = {"size": "700"}
        tar.addfile(info, io.BytesIO(b"z" * 700))
        tar.addfile(tarfile.TarInfo("b.txt"), io.BytesIO(b""))
    data = bytearray(raw.getvalue())
    header = data.index(b"a.txt", 1024) - 0                     # the member header after the pax header
    data[header + 124: header + 136] = b"00000000000\0"         # size 0 in the header: pax says 700
    data[header + 148: header + 156] = b"        "
    data[header + 148: header + 155] = b"%06o\0" % (sum(data[header:header + 512]))
    path = tmp_path / "x.tar.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    assert check_targz(path, "x.tar.gz").problems == []


def test_tar_bad_checksum_in_a_later_header(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("a", "b"):
            info = tarfile.TarInfo(name)
            info.size = 10
            tar.addfile(info, io.BytesIO(b"0123456789"))
    data = bytearray(raw.getvalue())
    data[1024 + 10] ^= 0xFF                                   # inside the second header's name
    path = tmp_path / "x.tar.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    result = check_targz(path, "x.tar.gz")
    assert codes(result) == [("error", "tarball-corrupt")] and "checksum" in result.problems[0].message


@pytest.mark.parametrize("field, code", [
    ('skip="\xb2"', "run-unverified"),
    ('skip="' + "9" * 5000 + '"', "metadata-too-large"),
    ('skip="999999"', "metadata-too-large"),
    ('skip="3"\nfilesizes="' + "9" * 5000 + '"', "metadata-too-large"),
])
def test_hostile_makeself_headers(tmp_path, field, code):
    path = tmp_path / "a.run"
    path.write_bytes(("#!/bin/sh\n" + field + "\nexit 0\n").encode("latin-1") + b"payload")
    assert code in [c for _, c in codes(check_run(path, "a.run"))]


def _wheel_with_record(path: Path, record: bytes, method=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as zf:
        zf.writestr("demo/__init__.py", b"x = 1\n" * 100)
        zf.writestr("demo-1.0.dist-info/RECORD", record)
    return path


def test_record_field_over_128_kib(tmp_path):
    path = _wheel_with_record(tmp_path / "demo-1.0-py3-none-any.whl", b"demo/__init__.py," + b"x" * (200 << 10) + b",1\n")
    result = check_wheel(path, path.name)
    assert codes(result) == [("error", "wheel-corrupt")] and "field" in result.problems[0].message


def test_corrupt_lzma_member(tmp_path):
    path = _wheel_with_record(tmp_path / "demo-1.0-py3-none-any.whl", b"demo/__init__.py,,\n", zipfile.ZIP_LZMA)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("demo/__init__.py")
    flip(path, info.header_offset + 30 + len(info.filename) + 12)
    assert codes(check_wheel(path, path.name)) == [("error", "wheel-corrupt")]


def test_zip_directory_over_the_cap(tmp_path, monkeypatch):
    path = _wheel_with_record(tmp_path / "demo-1.0-py3-none-any.whl", b"demo/__init__.py,,\n")
    monkeypatch.setattr(integrity, "MAX_CENTRAL_DIRECTORY", 10)
    result = check_wheel(path, path.name)
    assert codes(result) == [("error", "metadata-too-large")] and "zip directory" in result.problems[0].message


def test_checksum_file_over_the_cap(tmp_path, monkeypatch):
    from ascend_build.catalog import checksums

    (tmp_path / "SHA256SUMS").write_text(f"{'a' * 64}  a.run\n" * 10)
    monkeypatch.setattr(checksums, "MAX_CHECKSUM_FILE", 100)
    found, problems = load_checksums(tmp_path)
    assert found == {} and [(p.code, p.file) for p in problems] == [("checksum-file-unreadable", "SHA256SUMS")]


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(["tar.gz", "wheel", "run"]),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=16), st.integers(0, 32)), min_size=1, max_size=5))
def test_damaged_files_are_problems_never_exceptions(tmp_path_factory, kind, edits):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d" * 120)
        info.size, info.pax_headers = 700, {"comment": "x" * 50}
        tar.addfile(info, io.BytesIO(b"z" * 700))
    samples = {"tar.gz": raw.getvalue(),
               "wheel": standins.build_wheel("demo", "1.0", ("py3", "none", ["any"]), {"demo/a.py": b"y" * 3000})[1],
               "run": makeself(tmp_path_factory.mktemp("run") / "a.run", [b"payload"]).read_bytes()}
    data = bytearray(samples[kind])
    for where, insert, cut in edits:
        where %= len(data) or 1
        data[where:where + cut] = insert
    path = tmp_path_factory.mktemp("fuzz") / "x"
    path.write_bytes(gzip.compress(bytes(data)) if kind == "tar.gz" else bytes(data))
    result = verify_file(path, "x", kind)
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert all(p.file == "x" and p.code for p in result.problems)
