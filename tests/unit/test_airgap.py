"""save/load without a daemon: archives made from hand-written skopeo `dir:` folders, then
checked by `unpack` and `load` with a fake skopeo and engine. A damaged archive is one error
naming the damage, before skopeo or the engine is asked anything, and no temporary file stays."""
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from ascend_build.airgap import layout, tarball
from ascend_build.airgap.layout import BLOBS, add_dir, finish
from ascend_build.airgap.transfer import LoadRequest, SaveRequest, check_save, dir_view, load, tagged
from ascend_build.airgap.verify import parse_sums, unpack
from ascend_build.errors import ArchiveError, ConfigError, OutputError
from ascend_build.outputs import file_in_place

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put(folder: Path, data: bytes, name: str = None) -> dict:
    digest = digest_of(data)
    (folder / (name or digest.split(":")[1])).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def image_manifest(folder: Path, arch: str, layer: bytes, lie: dict = None) -> bytes:
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers"}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_V2,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **put(folder, config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **put(folder, layer), **(lie or {})}]}
    return json.dumps(manifest).encode()


def single_dir(tmp: Path, name: str, arch: str = "amd64", layer: bytes = b"layer-bytes " * 100, lie: dict = None) -> Path:
    folder = tmp / name
    folder.mkdir()
    (folder / "version").write_text("Directory Transport Version: 1.1\n")
    (folder / "manifest.json").write_bytes(image_manifest(folder, arch, layer, lie))
    return folder


def list_dir(tmp: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    (folder / "version").write_text("Directory Transport Version: 1.1\n")
    entries = []
    for arch in ("amd64", "arm64"):
        data = image_manifest(folder, arch, f"{arch} layer ".encode() * 200)
        digest = digest_of(data)
        (folder / f"{digest.split(':')[1]}.manifest.json").write_bytes(data)
        entries.append({"mediaType": DOCKER_V2, "digest": digest, "size": len(data), "platform": {"architecture": arch, "os": "linux"}})
    entries.append({"mediaType": DOCKER_V2, **put(folder, image_manifest(folder, "unknown", b"attestation")),
                    "platform": {"architecture": "unknown", "os": "unknown"}})
    (folder / "manifest.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": entries}))
    return folder


def archive(tmp: Path, images=(("localhost/demo:1", "single"), ("127.0.0.1:5000/x/multi:1.0", "list")), lie=None) -> Path:
    root = tmp / "layout"
    made = []
    for number, (ref, kind) in enumerate(images):
        folder = single_dir(tmp, f"d{number}", lie=lie) if kind == "single" else list_dir(tmp, f"d{number}")
        made.append(add_dir(root, ref, folder))
    members = finish(root, made, {}, "tests")
    out = tmp / "images.tar"
    tarball.write(root, members, out)
    return out


def flip(path: Path, member_name: str, at: int = 10) -> None:
    with tarfile.open(path) as tar:
        offset = tar.getmember(member_name).offset_data + at
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))


def blob_members(path: Path):
    with tarfile.open(path) as tar:
        return [m for m in tar.getmembers() if m.name.startswith(BLOBS + "/")]


def test_an_archive_round_trips_with_every_arch_of_a_list(tmp_path):
    path = archive(tmp_path)
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names[2:7] == ["SHA256SUMS", "ascend-build-archive.json", "oci-layout", "index.json", "manifest.json"]
    got = unpack(path, tmp_path / "out")
    single, multi = got.images
    assert (single.ref, single.is_list, single.platforms) == ("localhost/demo:1", False, ["linux/amd64"])
    assert multi.is_list and multi.platforms == ["linux/amd64", "linux/arm64"], "attestations are no platform"
    assert single.config and (tmp_path / "out" / layout.blob_name(single.config)).exists()
    docker = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [e["RepoTags"] for e in docker] == [["localhost/demo:1"], ["127.0.0.1:5000/x/multi:1.0-amd64"],
                                               ["127.0.0.1:5000/x/multi:1.0-arm64"]]


def test_sha256sums_checks_with_sha256sum(tmp_path):
    path = archive(tmp_path)
    got = unpack(path, tmp_path / "out")
    sums = parse_sums((got.root / "SHA256SUMS").read_text())
    for name, hexdigest in sums.items():
        assert hashlib.sha256((got.root / name).read_bytes()).hexdigest() == hexdigest
    assert len([n for n in sums if n.startswith(BLOBS)]) == len(got.blobs)


@pytest.mark.parametrize("which", [0, -1])
def test_a_flipped_byte_in_a_blob_is_refused_naming_the_blob(tmp_path, which):
    path = archive(tmp_path)
    member = blob_members(path)[which]
    flip(path, member.name, at=member.size // 2)
    with pytest.raises(ArchiveError) as err:
        unpack(path, tmp_path / "out")
    assert f"blob sha256:{member.name.rsplit('/', 1)[1]}" in err.value.message and "damaged" in err.value.message


@pytest.mark.parametrize("name", ["index.json", "ascend-build-archive.json", "manifest.json", "oci-layout"])
def test_a_flipped_byte_in_a_layout_file_is_refused(tmp_path, name):
    path = archive(tmp_path)
    flip(path, name, at=5)
    with pytest.raises(ArchiveError, match=f"{name} in .* is damaged"):
        unpack(path, tmp_path / "out")


def test_a_flipped_byte_in_sha256sums_is_refused(tmp_path):
    path = archive(tmp_path)
    flip(path, "SHA256SUMS", at=3)
    with pytest.raises(ArchiveError, match="damaged"):
        unpack(path, tmp_path / "out")


def test_a_size_that_disagrees_with_the_descriptor_is_refused(tmp_path):
    """The sums agree (the archive was written so), the manifest's size of its layer does not."""
    path = archive(tmp_path, images=(("localhost/demo:1", "single"),), lie={"size": 3})
    with pytest.raises(ArchiveError, match=r"bytes, but manifest sha256:.* says 3"):
        unpack(path, tmp_path / "out")


def test_a_cut_short_archive_is_refused(tmp_path):
    path = archive(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="cut short|not a readable tar"):
        unpack(path, tmp_path / "out")


def rewrite(path: Path, extra: tarfile.TarInfo, data: bytes = b"") -> None:
    """The archive with one more member at the end."""
    with tarfile.open(path, "a") as tar:
        tar.addfile(extra, io.BytesIO(data) if data else None)


@pytest.mark.parametrize("kind", ["link", "dotdot", "absolute", "unknown", "unlisted-blob"])
def test_members_that_save_never_writes_are_refused(tmp_path, kind):
    path = archive(tmp_path)
    data = b"extra"
    if kind == "link":
        info = tarfile.TarInfo("blobs/sha256/" + "a" * 64)
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    else:
        name = {"dotdot": "../escape", "absolute": "/tmp/escape", "unknown": "run.sh",
                "unlisted-blob": "blobs/sha256/" + hashlib.sha256(data).hexdigest()}[kind]
        info = tarfile.TarInfo(name)
        info.size = len(data)
    rewrite(path, info, data if kind != "link" else b"")
    with pytest.raises(ArchiveError) as err:
        unpack(path, tmp_path / "out")
    assert not (tmp_path / "escape").exists() and not Path("/tmp/escape").exists()
    assert err.value.message


def test_an_image_name_that_could_be_an_option_is_refused(tmp_path):
    root = tmp_path / "layout"
    made = [add_dir(root, "localhost/demo:1", single_dir(tmp_path, "d0"))]
    made[0].ref = "--dest-creds=x"
    out = tmp_path / "bad.tar"
    tarball.write(root, finish(root, made, {}, "tests"), out)
    with pytest.raises(ArchiveError, match="names an image"):
        unpack(out, tmp_path / "out")


def test_image_arguments_follow_the_grammar():
    assert tagged("127.0.0.1:5000/mindie", "image") == "127.0.0.1:5000/mindie:latest"
    assert tagged("localhost:5000/a/b:1.0", "image") == "localhost:5000/a/b:1.0"
    for bad in ("--all", "-o", "Upper:1", "a b", "x:1;rm"):
        with pytest.raises(ConfigError):
            tagged(bad, "image")
    with pytest.raises(ConfigError, match="digest"):
        tagged("reg.io/a@sha256:" + "0" * 64, "image")
    with pytest.raises(ConfigError, match="--from"):
        check_save(SaveRequest(("a:1",), Path("x.tar"), source="hub"))
    with pytest.raises(ConfigError, match="names no registry"):
        check_save(SaveRequest(("a:1",), Path("x.tar"), source="registry"))
    with pytest.raises(ConfigError, match="is not one"):
        check_save(SaveRequest(("registry.example.com/a:1",), Path("x.tar"), insecure_registry=True))
    assert check_save(SaveRequest(("a", "a:latest", "b:2"), Path("x.tar"))) == ["a:latest", "b:2"]


class FakeSkopeo:
    def __init__(self):
        self.copies = []

    def copy(self, source, dest, flags=(), tmpdir=None, on_line=None, timeout=0):
        self.copies.append([*flags, "--", source, dest])
        view = Path(source.split(":", 1)[1])
        assert (view / "manifest.json").is_file() and (view / "version").is_file()
        if "--digestfile" in flags:
            Path(flags[flags.index("--digestfile") + 1]).write_text(digest_of((view / "manifest.json").read_bytes()))


class FakeEngine:
    binary, name, store_transport = "docker", "docker", "docker-daemon"

    def __init__(self, ids):
        self.ids, self.found, self.tags = ids, {}, []

    def store_reference(self, ref):
        return f"docker-daemon:{ref}"

    def store_flags(self, side):
        return []

    def inspect(self, ref):
        return {"Id": self.ids(ref)}

    def tag(self, image, ref):
        self.tags.append(["tag", image, ref])


def test_load_refuses_a_damaged_archive_before_asking_skopeo_and_leaves_no_files(tmp_path):
    path = archive(tmp_path)
    member = blob_members(path)[0]
    flip(path, member.name, at=1)
    temp = tmp_path / "temp"
    temp.mkdir()
    skopeo, engine = FakeSkopeo(), FakeEngine(lambda ref: "")
    for push in (None, "127.0.0.1:5000/site/demo:1"):
        with pytest.raises(ArchiveError, match=member.name.rsplit("/", 1)[1]):
            load(LoadRequest(path, push=push, image="localhost/demo:1", insecure_registry=True, temp_dir=temp),
                 lambda: engine, skopeo)
    assert skopeo.copies == [] and engine.tags == []
    assert list(temp.iterdir()) == []


def test_load_puts_each_arch_of_a_list_in_the_engine_and_pushes_the_list_whole(tmp_path, monkeypatch):
    path = archive(tmp_path)
    checked = unpack(path, tmp_path / "check")
    configs = {}
    for image in checked.images:
        for platform, digest in (image.instances.items() if image.is_list else [(None, image.digest)]):
            config = layout.manifest_of(checked.root, digest)["config"]["digest"]
            ref = layout.arch_ref(image.ref, platform) if platform else image.ref
            configs[ref] = config
    monkeypatch.setattr("ascend_build.airgap.transfer.host_arch", lambda: "aarch64")
    temp = tmp_path / "temp"
    temp.mkdir()
    skopeo, engine = FakeSkopeo(), FakeEngine(lambda ref: configs[ref])
    result = load(LoadRequest(path, temp_dir=temp), lambda: engine, skopeo)
    assert [(i["ref"], i["platform"]) for i in result["loaded"]] == [
        ("localhost/demo:1", "linux/amd64"), ("127.0.0.1:5000/x/multi:1.0-amd64", "linux/amd64"),
        ("127.0.0.1:5000/x/multi:1.0-arm64", "linux/arm64"), ("127.0.0.1:5000/x/multi:1.0", "linux/arm64")]
    assert engine.tags == [["tag", "127.0.0.1:5000/x/multi:1.0-arm64", "127.0.0.1:5000/x/multi:1.0"]]
    assert all(c[-3] == "--" and c[-1].startswith("docker-daemon:") for c in skopeo.copies)
    pushed = load(LoadRequest(path, push="127.0.0.1:5000/site/multi:2", image="127.0.0.1:5000/x/multi:1.0",
                              insecure_registry=True, temp_dir=temp), lambda: pytest.fail("no engine for --push"), skopeo)
    flags = skopeo.copies[-1]
    assert flags[:3] == ["--all", "--preserve-digests", "--dest-tls-verify=false"]
    assert flags[-1] == "docker://127.0.0.1:5000/site/multi:2"
    assert pushed["pushed"][0]["digest"] == checked.images[1].digest
    assert list(temp.iterdir()) == []


def test_load_refuses_an_image_id_the_engine_does_not_hold(tmp_path):
    path = archive(tmp_path, images=(("localhost/demo:1", "single"),))
    with pytest.raises(Exception, match="not the archive's image"):
        load(LoadRequest(path, temp_dir=tmp_path), lambda: FakeEngine(lambda ref: "sha256:" + "0" * 64), FakeSkopeo())


def test_push_needs_one_image_and_a_registry(tmp_path):
    path = archive(tmp_path)
    with pytest.raises(ConfigError, match="names no registry"):
        load(LoadRequest(path, push="site/demo:1", temp_dir=tmp_path), lambda: None, FakeSkopeo())
    with pytest.raises(ConfigError, match="is not one"):
        load(LoadRequest(path, push="registry.site.example/demo:1", insecure_registry=True, temp_dir=tmp_path), lambda: None, FakeSkopeo())
    with pytest.raises(ConfigError, match="names one image, and the archive holds 2"):
        load(LoadRequest(path, push="127.0.0.1:5000/demo:1", temp_dir=tmp_path), lambda: None, FakeSkopeo())


def test_dir_view_links_a_list_with_its_instances(tmp_path):
    checked = unpack(archive(tmp_path), tmp_path / "out")
    multi = checked.images[1]
    count = dir_view(checked.root, multi.digest, tmp_path / "view", multi.is_list)
    names = set(os.listdir(tmp_path / "view"))
    assert {"version", "manifest.json"} <= names
    assert {f"{d.split(':')[1]}.manifest.json" for d in multi.instances.values()} <= names
    assert count == 6, "config and layer of each of the three entries"
    assert os.stat(tmp_path / "view" / "manifest.json").st_ino == os.stat(checked.root / layout.blob_name(multi.digest)).st_ino


def test_an_interrupted_save_leaves_no_file(tmp_path):
    out = tmp_path / "a.tar"
    with pytest.raises(KeyboardInterrupt):
        with file_in_place(out, False, None) as temp:
            temp.write_bytes(b"partial")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    out.write_text("x")
    with pytest.raises(OutputError, match="already exists"):
        with file_in_place(out, False, None):
            pass
