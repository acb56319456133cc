"""Source distributions `fetch` downloads as they are (uv resolves wheels only): the file of one
pinned release, found on the index's project page (PEP 691 JSON, else PEP 503 HTML), checked by
name, version and sha256 as the wheels are, then read (catalog/sdist.py) so that what its wheel
requires and what building it needs join the resolution."""
import json
import re
from html.parser import HTMLParser
from typing import List, Optional, Tuple
from urllib.parse import urljoin

import urllib3
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .. import grammar
from ..catalog.sdist import sdist_name
from ..errors import PackageError
from .download import Client
from .pace import Limits
from .resolve import Wheel

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
MAX_PAGE = 32 << 20                      # a large project's page on PyPI is a few MiB
_SHA256 = re.compile(r"[0-9a-f]{64}")


def pinned(line: str) -> Tuple[str, str]:
    """(normalised name, version) of `name==version`; PackageError for anything else."""
    try:
        req = Requirement(line)
        (spec,) = req.specifier
    except (InvalidRequirement, ValueError):
        raise PackageError(f"a source distribution is asked as {line!r}, not as name==version",
                           fix="report this: a component asks for it") from None
    if spec.operator != "==" or "*" in spec.version:
        raise PackageError(f"a source distribution is asked as {line!r}, not as name==version",
                           fix="report this: a component asks for it")
    return canonicalize_name(req.name), spec.version


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: List[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.hrefs.append(href)


def _files(page: bytes, kind: str, base: str) -> List[dict]:
    """The project page's files as {filename, url, sha256, size}."""
    if kind.startswith(JSON_TYPE):
        data = json.loads(page)
        return [{"filename": str(f.get("filename", "")), "url": urljoin(base, str(f.get("url", ""))),
                 "sha256": str((f.get("hashes") or {}).get("sha256", "")), "size": f.get("size")}
                for f in data.get("files", []) if isinstance(f, dict)]
    links = _Links()
    links.feed(page.decode("utf-8", "replace"))
    found = []
    for href in links.hrefs:
        url, _, fragment = urljoin(base, href).partition("#")
        found.append({"filename": url.rsplit("/", 1)[-1], "url": url,
                      "sha256": fragment[len("sha256="):] if fragment.startswith("sha256=") else "", "size": None})
    return found


def find_sdist(line: str, index_url: str, client: Client = None, limits: Limits = Limits()) -> Wheel:
    """The `.tar.gz` of `name==version` on the index, its URL and sha256 checked."""
    name, version = pinned(line)
    page_url = f"{index_url.rstrip('/')}/{name}/"
    client = client or Client()
    try:
        response = client.pool(page_url).request(
            "GET", page_url, headers={"Accept": f"{JSON_TYPE}, text/html;q=0.1", "User-Agent": "ascend-build"},
            timeout=urllib3.Timeout(connect=limits.connect, read=limits.read_timeout), preload_content=False,
            retries=urllib3.Retry(total=3, backoff_factor=0.5, redirect=3))
        page = response.read(MAX_PAGE + 1)
        response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise PackageError(f"cannot reach the package index {index_url} for {name}'s source: {exc}",
                           fix="check the network and proxy (HTTPS_PROXY), or name a reachable mirror with --index-url") from None
    if response.status != 200 or len(page) > MAX_PAGE:
        raise PackageError(f"the package index {index_url} has no page for {name} (HTTP {response.status})"
                           if response.status != 200 else f"{page_url} is larger than {MAX_PAGE >> 20} MiB",
                           fix="check the name, or use another index (--index-url)")
    try:
        files = _files(page, response.headers.get("Content-Type", ""), page_url)
    except (ValueError, AttributeError):
        raise PackageError(f"{page_url} is not a package index page", fix="use another index (--index-url)") from None
    for entry in files:
        found = sdist_name(entry["filename"]) if entry["filename"].endswith(".tar.gz") else None
        if found and found[0] == name and Version(found[1]) == Version(version):
            return _checked(entry)
    raise PackageError(f"{index_url} has no source distribution {name}-{version}.tar.gz",
                       fix=f"put {name}-{version}.tar.gz into the folder, or use an index that has it (--index-url)")


def _checked(entry: dict) -> Wheel:
    name, version = sdist_name(entry["filename"]) or ("", "")
    try:
        grammar.url(entry["url"])
        grammar.file_name(entry["filename"])
    except ValueError as exc:
        raise PackageError(f"the index gave {entry['filename']!r} an unusable URL: {exc}",
                           fix="use another index (--index-url)") from None
    if not _SHA256.fullmatch(entry["sha256"]):
        raise PackageError(f"the index gives no sha256 for {entry['filename']}", fix="use an index that publishes hashes")
    size: Optional[int] = entry["size"] if isinstance(entry["size"], int) and entry["size"] >= 0 else None
    return Wheel(name=name, version=version, url=entry["url"], filename=entry["filename"], sha256=entry["sha256"], size=size)
