"""`ascend-build fetch` against a package index served on 127.0.0.1 by the test (PEP 691 JSON and
PEP 503 HTML pages, small wheels whose dependencies differ between x86_64 and aarch64), resolved
by the real uv. No test touches the internet."""
import hashlib
import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List

import pytest

from ascend_build.demo.standins import build_wheel
from ascend_build.errors import ConfigError, PackageError
from ascend_build.fetch import FetchOptions, fetch, plan_fetch
from ascend_build.fetch.download import download, present
from ascend_build.fetch.resolve import Wheel
from ascend_build.platforms import Target, platform_tags
from ascend_build.catalog.compat import load_deps, pins_for
from ascend_build.components.pta import torch_npu_version
from ascend_build.components.pta_rules import pta_data
from ascend_build.fetch.wants import requirement_lines
from clirun import cli

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
ARCHES = ("x86_64", "aarch64")


def _binary(name: str, version: str, requires=()) -> Dict[str, bytes]:
    """The cp311 wheels of a package with a C extension: one per arch."""
    return dict(build_wheel(name, version, ("cp311", "cp311", [f"manylinux_2_17_{arch}", f"manylinux2014_{arch}"]),
                            {f"{name}/lib.bin": f"{name} for {arch}".encode() * 64}, requires) for arch in ARCHES)


def _pure(name: str, version: str, requires=()) -> Dict[str, bytes]:
    return dict([build_wheel(name, version, ("py3", "none", ["any"]), {f"{name}/__init__.py": b""}, requires)])


def index_files() -> Dict[str, Dict[str, bytes]]:
    """Project name -> {file name: bytes}: torch_npu, torch (whose dependencies differ per arch),
    what torch_npu imports and CANN's Python dependencies."""
    projects = {
        "torch-npu": _binary("torch_npu", "2.6.0.post5", ["torch==2.6.0"]),
        "torch": _binary("torch", "2.6.0", ["filelock", 'x86-only; platform_machine == "x86_64"',
                                            'arm-only; platform_machine == "aarch64"']),
        "numpy": {**_binary("numpy", "1.24.0"), **_binary("numpy", "1.26.4"), **_binary("numpy", "2.1.0")},
        "protobuf": {**_pure("protobuf", "3.20.0"), **_pure("protobuf", "5.0.0")},
    }
    for name in ("filelock", "x86-only", "arm-only", *load_deps()["stage_tools"]["cann"], *pta_data()["undeclared"]["torch-npu"]):
        projects.setdefault(name, _pure(name.replace("-", "_"), "1.0"))
    return projects


class Index:
    """A PEP 503/691 index on 127.0.0.1: /simple/<project>/ and /files/<file> (with Range)."""

    def __init__(self, projects: Dict[str, Dict[str, bytes]]):
        self.projects = projects
        self.files = {name: data for files in projects.values() for name, data in files.items()}
        self.served: Dict[str, bytes] = {}        # file name -> other bytes to serve (a tampered file)
        self.ranges: List[tuple] = []            # (file name, Range header) of each file request
        self.honour_ranges = True
        self.html_only = False                   # a PEP 503 index without the JSON API
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.do_GET(body=False)

            def do_GET(self, body=True):
                match = re.fullmatch(r"/simple/([^/]+)/", self.path)
                if match and match.group(1) in index.projects:
                    return self.page(match.group(1), body)
                name = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/files/") and name in index.files:
                    return self.file(name, body)
                self.send_error(404)

            def page(self, project, body):
                files = index.projects[project]
                sha = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
                if JSON_TYPE in self.headers.get("Accept", "") and not index.html_only:
                    kind = JSON_TYPE
                    data = json.dumps({"meta": {"api-version": "1.0"}, "name": project, "files": [
                        {"filename": n, "url": f"/files/{n}", "hashes": {"sha256": sha[n]}} for n in files]}).encode()
                else:
                    kind = "text/html"
                    data = "".join(f'<a href="../../files/{n}#sha256={sha[n]}">{n}</a>\n' for n in files).encode()
                self.send(200, kind, data, body)

            def file(self, name, body):
                data = index.served.get(name, index.files[name])
                wanted = self.headers.get("Range")
                if self.headers.get("User-Agent", "").startswith("ascend-build/"):
                    index.ranges.append((name, wanted))
                match = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted or "")
                if not (match and index.honour_ranges):
                    return self.send(200, "application/octet-stream", data, body)
                first, last = match.groups()
                start = len(data) - int(last) if not first else int(first)
                end = int(last) if first and last else len(data) - 1
                if start >= len(data):
                    return self.send(416, "text/plain", b"", body)
                self.send(206, "application/octet-stream", data[start:end + 1], body,
                          {"Content-Range": f"bytes {start}-{end}/{len(data)}"})

            def send(self, code, kind, data, body, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if body:
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def index():
    served = Index(index_files())
    yield served
    served.close()


@pytest.fixture(autouse=True)
def _fresh(index):
    index.served.clear()
    index.ranges.clear()
    index.honour_ranges = True


def folder(tmp_path: Path, *files: str, config: str = "target: pta\n") -> Path:
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True)
    (workdir / "ascend-build.yaml").write_text(config)
    for name in files:
        (workdir / name).write_bytes(b"stand-in")
    return workdir


def options(index: Index, torch_npu=None, **more) -> FetchOptions:
    """fetch's options against `index`; `torch_npu` as `--torch-npu` gives it."""
    return FetchOptions(**{"python": "3.11", "index_url": index.url, "torch_index_url": index.url,
                           "releases": (("torch_npu", torch_npu),) if torch_npu else (), **more})


def names(workdir: Path) -> List[str]:
    return sorted(p.name for p in workdir.glob("*.whl"))


def test_an_aarch64_target_gets_the_aarch64_set_not_the_hosts(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    plan = plan_fetch(workdir, options(index, platform="linux/arm64", torch_npu="2.6.0.post5"))
    result = fetch(plan)
    got = names(workdir)
    assert "torch-2.6.0-0standin-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl" in got
    assert "torch_npu-2.6.0.post5-0standin-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl" in got
    assert any(n.startswith("arm_only-") for n in got) and not any(n.startswith("x86_only-") for n in got)
    assert not any("x86_64" in n for n in got)
    cann = {n.split("-")[0] for n in got} >= {d.replace("-", "_") for d in load_deps()["stage_tools"]["cann"]}
    assert cann, "CANN's Python dependencies are fetched"
    assert len(result.fetched) == len(got) and not result.present and result.bytes > 0
    assert not list(workdir.glob(".*.part"))


def test_an_x86_target_gets_the_x86_set_and_a_second_run_downloads_nothing(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-x86_64.run")
    plan = plan_fetch(workdir, options(index, platform="x86_64", torch_npu="2.6.0.post5"))
    fetch(plan)
    got = names(workdir)
    assert any(n.startswith("x86_only-") for n in got) and not any(n.startswith("arm_only-") for n in got)
    assert not any("aarch64" in n for n in got)
    requests = len(index.ranges)
    again = fetch(plan)
    assert not again.fetched and len(again.present) == len(got)
    assert len(index.ranges) == requests, "files already here with the right sha256 are not downloaded again"


def test_cann_pins_and_requirements_files_reach_the_resolver(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.3.RC1_linux-aarch64.run")
    (workdir / "requirements.txt").write_text("# extra\nfilelock>=1  # comment\n")
    plan = plan_fetch(workdir, options(index, platform="aarch64", torch_npu="2.6.0.post5"))
    assert {"numpy==1.24.0", "protobuf==3.20", "filelock>=1"} <= set(plan.wants.requirements)
    fetch(plan)
    got = names(workdir)
    assert any(n.startswith("numpy-1.24.0-") for n in got) and any(n.startswith("protobuf-3.20.0-") for n in got)


def test_the_default_torch_npu_is_the_newest_made_for_the_folders_cann(tmp_path, index):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    plan = plan_fetch(workdir, options(index, platform="aarch64"))
    assert "torch_npu 2.9.0" in plan.wants.said and "torch-npu==2.9.0" in plan.wants.requirements
    with pytest.raises(ConfigError, match="no CANN toolkit found"):
        plan_fetch(folder(tmp_path / "none", config="target: pta\n"), options(index, platform="aarch64"))


def test_pins_come_from_the_data_file():
    deps = load_deps()
    assert "numpy==1.24.0" in pins_for("8.3.RC1", deps["cann_pins"])
    assert "numpy==1.24.0" in pins_for("8.1.RC1", deps["cann_pins"])
    assert pins_for("8.5.0", deps["cann_pins"]) == [] and pins_for("8.0.0", deps["cann_pins"]) == []
    pta = pta_data()
    assert pins_for("2.1.0", pta["torch_pins"]) == ["numpy<2"] and pins_for("2.6.0", pta["torch_pins"]) == []
    assert torch_npu_version(None, "8.2.RC1", pta["cann_torch_npu"]) == "2.6.0"


def _wheel(index: Index, name: str) -> Wheel:
    data = index.files[name]
    return Wheel(name="torch", version="2.6.0", url=index.url.replace("/simple", f"/files/{name}"), filename=name,
                 sha256=hashlib.sha256(data).hexdigest(), size=len(data))


TORCH_ARM = "torch-2.6.0-0standin-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"


def test_a_truncated_part_file_is_continued_with_a_range_request(index, tmp_path):
    data = index.files[TORCH_ARM]
    (tmp_path / f".{TORCH_ARM}.part").write_bytes(data[:1000])
    path = download(_wheel(index, TORCH_ARM), tmp_path)
    assert path.read_bytes() == data
    assert index.ranges == [(TORCH_ARM, "bytes=1000-")]
    assert not (tmp_path / f".{TORCH_ARM}.part").exists()


def test_a_server_that_ignores_the_range_sends_the_whole_file_again(index, tmp_path):
    index.honour_ranges = False
    data = index.files[TORCH_ARM]
    (tmp_path / f".{TORCH_ARM}.part").write_bytes(data[:1000])
    assert download(_wheel(index, TORCH_ARM), tmp_path).read_bytes() == data


def test_a_hash_mismatch_is_refused_and_leaves_no_file(index, tmp_path):
    data = index.files[TORCH_ARM]
    index.served[TORCH_ARM] = bytes(len(data))
    with pytest.raises(PackageError, match="refused"):
        download(_wheel(index, TORCH_ARM), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_that_name_with_other_bytes_is_never_replaced(index, tmp_path):
    (tmp_path / TORCH_ARM).write_bytes(b"the user's own file")
    with pytest.raises(PackageError, match="is not the file the index lists"):
        present(tmp_path, _wheel(index, TORCH_ARM))
    assert (tmp_path / TORCH_ARM).read_bytes() == b"the user's own file"
    (tmp_path / TORCH_ARM).unlink()
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / TORCH_ARM).write_bytes(index.files[TORCH_ARM])
    assert present(tmp_path, _wheel(index, TORCH_ARM)) == tmp_path / "packages" / TORCH_ARM


def test_an_index_that_cannot_be_reached_is_one_clear_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/simple"
    workdir = folder(tmp_path)
    done = cli("fetch", "-C", workdir, "--platform", "aarch64", "--python", "3.11", "--torch-npu", "2.6.0.post5",
               "--index-url", url, "--torch-index-url", url, timeout=120, env={**os.environ, "UV_HTTP_RETRIES": "0"})
    assert done.returncode == 1
    assert "cannot reach the package index" in done.stderr and "Traceback" not in done.stderr
    assert not list(workdir.glob("*.whl"))


def test_a_package_without_a_wheel_for_the_target_is_one_clear_error(index, tmp_path):
    workdir = folder(tmp_path)
    done = cli("fetch", "-C", workdir, "--platform", "aarch64", "--python", "3.12", "--torch-npu", "2.6.0.post5",
               "--index-url", index.url, "--torch-index-url", index.url, timeout=120)
    assert done.returncode == 1 and "cannot resolve" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("line, message", [("--index-url http://evil/simple", "not a requirement"),
                                           ("torch @ https://example.invalid/torch.whl", "names a URL"),
                                           ("numpy<2\nnot a requirement!", "requirements.txt:2")])
def test_requirements_files_hold_plain_requirements_only(tmp_path, line, message):
    path = tmp_path / "requirements.txt"
    path.write_text(line + "\n")
    with pytest.raises(PackageError, match=message):
        requirement_lines(path, "requirements.txt")


@pytest.mark.parametrize("field, value", [("index_url", "file:///etc"), ("index_url", "http://x/$(id)"),
                                          ("python", "3.11; rm"), ("releases", (("torch_npu", "2.6 post"),))])
def test_options_are_checked_at_the_boundary(tmp_path, field, value):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
    with pytest.raises(ConfigError):
        plan_fetch(workdir, FetchOptions(**{"platform": "aarch64", "python": "3.11", field: value}))


def test_the_target_platforms_are_the_targets_glibc_and_older():
    tags = platform_tags("aarch64")
    assert tags[0] == "manylinux_2_28_aarch64" and "manylinux2014_aarch64" in tags and tags[-1] == "linux_aarch64"
    assert "manylinux_2_29_aarch64" not in tags and not any("x86_64" in t for t in tags)
    assert "manylinux1_x86_64" in platform_tags("x86_64")
    assert platform_tags("aarch64", (2, 35))[0] == "manylinux_2_35_aarch64"
    assert Target("3.11", "aarch64", (2, 35)).uv_platform == "aarch64-manylinux_2_35"


def test_x86_torch_comes_from_the_torch_index_and_the_rest_from_the_best_index(index, tmp_path):
    """PyPI's x86_64 torch is the CUDA build: torch_npu names the CPU build (+cpu) of the torch
    index, which mirrors a few other packages at old versions only."""
    torch_index = Index({
        "torch": _binary("torch", "2.6.0+cpu", ["filelock"]),
        "numpy": _binary("numpy", "1.24.0"),
    })
    main = Index({**index_files(),
                  "torch-npu": _binary("torch_npu", "2.6.0.post5", ['torch==2.6.0+cpu; platform_machine == "x86_64"',
                                                                    'torch==2.6.0; platform_machine == "aarch64"'])})
    try:
        workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-x86_64.run")
        fetch(plan_fetch(workdir, FetchOptions(platform="x86_64", python="3.11", releases=(("torch_npu", "2.6.0.post5"),),
                                               index_url=main.url, torch_index_url=torch_index.url)))
    finally:
        torch_index.close()
        main.close()
    got = names(workdir)
    assert any(n.startswith("torch-2.6.0+cpu-") and "x86_64" in n for n in got)
    assert not any(n.startswith("x86_only-") for n in got), "not the PyPI torch (its CUDA dependencies)"
    assert any(n.startswith("numpy-2.1.0-") for n in got)


def test_the_dependencies_of_the_stages_own_wheels_are_fetched(index, tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run", config="target: mindie\n")
    own, data = build_wheel("mindie_llm", "3.0.0", ("cp311", "cp311", ["manylinux_2_17_aarch64"]), {}, ["arm-only>=1"])
    (workdir / own).write_bytes(data)
    plan = plan_fetch(workdir, options(index, platform="aarch64", torch_npu="2.6.0.post5"))
    fetch(plan)
    got = names(workdir)
    assert any(n.startswith("arm_only-") for n in got)
    assert [n for n in got if n.startswith("mindie_llm")] == [own] and (workdir / own).read_bytes() == data


@pytest.mark.parametrize("url, message", [
    ("https://files.example/..%2F..%2Fevil-1.0-py3-none-any.whl", "unusable"),
    ("file:///etc/torch-2.6.0-py3-none-any.whl", "unusable"),
    ("https://files.example/other-2.6.0-py3-none-any.whl", "gave other-2.6.0"),
    ("https://files.example/torch-2.6.1-py3-none-any.whl", "gave torch-2.6.1")])
def test_the_locks_urls_and_file_names_are_checked(url, message):
    from ascend_build.fetch.resolve import checked

    with pytest.raises(PackageError, match=message):
        checked("torch", "2.6.0", {"url": url, "hashes": {"sha256": "0" * 64}})


def test_a_part_file_that_is_a_link_is_refused(index, tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    work = tmp_path / "work"
    work.mkdir()
    (work / f".{TORCH_ARM}.part").symlink_to(outside)
    with pytest.raises(PackageError, match="link"):
        download(_wheel(index, TORCH_ARM), work)
    assert outside.read_bytes() == b"keep" and not (work / TORCH_ARM).exists()


def test_a_target_before_cann_needs_nothing_and_asks_no_index(tmp_path):
    workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run", config="target: base\n")
    plan = plan_fetch(workdir, FetchOptions(platform="aarch64", python="3.11", index_url="http://127.0.0.1:9/simple"))
    assert plan.wants.requirements == [] and fetch(plan).fetched == []


def test_a_pep_503_html_index_serves_as_well(tmp_path):
    html = Index(index_files())
    html.html_only = True
    try:
        workdir = folder(tmp_path, "Ascend-cann-toolkit_8.5.0_linux-aarch64.run")
        fetch(plan_fetch(workdir, options(html, platform="aarch64", torch_npu="2.6.0.post5")))
    finally:
        html.close()
    assert TORCH_ARM in names(workdir)


def test_a_stage_wheel_with_a_bad_name_is_one_clear_error(tmp_path):
    from ascend_build.catalog.model import Package
    from ascend_build.fetch.wants import local_requirement

    pkg = Package(path=tmp_path / "mindie_llm-x.whl", file="mindie_llm-x.whl", component="mindie",
                  slot="mindie_llm", version="x", format="wheel")
    with pytest.raises(PackageError, match="not a wheel's file name"):
        local_requirement(pkg)
