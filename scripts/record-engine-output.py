#!/usr/bin/env python3
"""Record the engine-output fixtures of tests/unit/test_engine_output.py from real builds of the
demo working directory: for docker's classic builder, BuildKit and podman, a first build (no
cache), a second one (all cached) and one whose cann stage fails (a missing installer).

    python3 scripts/record-engine-output.py [--docker-bin /usr/bin/docker] [--engines classic,buildkit,podman]

Needs the engines and the base image (scripts/make-base-image.sh); writes
tests/unit/fixtures/<engine>-<first|cached|failed>.txt and removes the images it tagged."""
import argparse
import os
import sys
import tempfile
from pathlib import Path

from ascend_build.build_context import write_context
from ascend_build.contract import TOOL_DIR
from ascend_build.engines.base import BuildRequest
from ascend_build.engines.detect import choose
from ascend_build.plan import plan_for
from ascend_build.scaffold import scaffold
from ascend_build.settings import Options, settings_for

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "unit" / "fixtures"
BASE_IMAGE = os.environ.get("ASCEND_BUILD_BASE_IMAGE", "localhost/ascend-build-base:bookworm")
ENGINES = {"classic": "docker", "buildkit": "buildkit", "podman": "podman"}
FAILING_CANN = f"#!/bin/bash\nset -e\n. {TOOL_DIR}/lib.sh\nab_install toolkit nonexistent.run\n"


def record(kind: str, docker_bin: str, root: Path) -> None:
    engine, _ = choose(ENGINES[kind], docker_bin)
    workdir = root / kind
    scaffold(workdir, demo=True, arch="host", cann="8.5.0", chip="910b", python="3.11", filler="4KiB", force=False)
    tag = f"ascend-build-record/{kind}:latest"
    # "warm" is not kept: podman does not reuse the layers of a --no-cache build
    for run in ("first", "warm", "cached", "failed"):
        if run == "failed":
            (workdir / "install-scripts" / "install_cann.sh").write_text(FAILING_CANN)
        plan = plan_for(settings_for(workdir, Options(target="mindie", delivery="copy", base_image=BASE_IMAGE), engine))
        ctx = write_context(root / f"{kind}-context", plan)
        request = BuildRequest(context=str(ctx), target="mindie", tag=tag, no_cache=run == "first")
        with engine.build_guard():     # what a failed build leaves behind is removed
            lines = list(engine.stream(engine.build_command(request)))
        print(f"{kind}-{run}: {len(lines)} lines, exit status {engine.returncode}")
        if run != "warm":
            (FIXTURES / f"{kind}-{run}.txt").write_text("\n".join(lines) + "\n")
    engine.run(["rmi", tag], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docker-bin", default=os.environ.get("ASCEND_BUILD_DOCKER"))
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.engines.split(","):
            record(kind, args.docker_bin, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
