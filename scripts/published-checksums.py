#!/usr/bin/env python3
"""Write src/ascend_build/catalog/published.json: the sha256 Huawei publishes for every CANN,
MindIE, torch and torch_npu file, from the manifests (`downloader/software/*.json`) of
ascend-deployer, Huawei's offline installer on PyPI.

    pip download --no-deps ascend-deployer -d /tmp/ad
    python3 scripts/published-checksums.py /tmp/ad/ascend_deployer-<version>-py3-none-any.whl
"""
import json
import re
import sys
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src/ascend_build/catalog/published.json"
MANIFEST = re.compile(r"ascend_deployer/downloader/software/(?P<kind>CANN|MindIE-image|Torch-npu)_[^/]+\.json")
WHEEL = re.compile(r"ascend_deployer-(?P<version>[^-]+)-py3-none-any\.whl")


def entries(node):
    """Every {filename, url, sha256} object of a manifest, at any depth."""
    if isinstance(node, dict):
        if {"filename", "sha256"} <= set(node):
            yield node
        for value in node.values():
            yield from entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from entries(value)


def main(wheel: Path) -> None:
    version = WHEEL.fullmatch(wheel.name)
    if not version:
        sys.exit(f"{wheel.name} is not an ascend-deployer wheel")
    files = {}
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            match = MANIFEST.fullmatch(name)
            if not match:
                continue
            for entry in entries(json.loads(zf.read(name))):
                row = {"sha256": entry["sha256"].lower(), "url": entry.get("url", ""), "manifest": Path(name).stem}
                old = files.get(entry["filename"])
                if old and old["sha256"] != row["sha256"]:
                    sys.exit(f"{entry['filename']}: two sha256 in {old['manifest']} and {row['manifest']}")
                files.setdefault(entry["filename"], row)
    data = {"source": f"ascend-deployer {version.group('version')}", "files": dict(sorted(files.items()))}
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{OUT}: {len(files)} files from {data['source']}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
