#!/usr/bin/env python3
"""Write src/ascend_build/catalog/published.json, the tables ascend-build ships, from a wheel of
ascend-deployer, Huawei's offline installer on PyPI (catalog/deployer.py reads it: published
sha256, the driver each CANN release requires, torch_npu/MindSpore -> CANN pairs). Users get a
newer one without a new ascend-build with `ascend-build data update`.

    pip download --no-deps ascend-deployer -d /tmp/ad
    python3 scripts/published-checksums.py /tmp/ad/ascend_deployer-<version>-py3-none-any.whl
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from ascend_build.catalog.deployer import read_wheel  # noqa: E402
from ascend_build.errors import AscendBuildError  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "src/ascend_build/catalog/published.json"

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        data = read_wheel(Path(sys.argv[1]))
    except AscendBuildError as exc:
        sys.exit(f"error: {exc.message}")
    data.pop("date")                         # the shipped copy changes only with the wheel
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{OUT}: {len(data['files'])} files, {len(data['cann_driver'])} CANN -> driver rows from {data['source']}")
