"""Docker: the classic builder, and BuildKit (buildx, or DOCKER_BUILDKIT=1 with a client < 23)."""
import os
from typing import List

from .base import BuildRequest, Engine, build_flags
from .parse import parse_buildkit, parse_classic


class _DaemonStore:
    """The docker daemon's store, as skopeo reaches it: docker-daemon: at DOCKER_HOST."""

    store_transport = "docker-daemon"

    def store_flags(self, side: str) -> List[str]:
        host = os.environ.get("DOCKER_HOST")
        return [f"--{side}-daemon-host", host] if host else []


class Docker(_DaemonStore, Engine):
    """`docker build` with the classic builder: no RUN --mount at all."""

    name = "docker"
    pulls_cache_from = True            # the classic builder reuses only images it has

    def __init__(self, binary: str = "docker"):
        super().__init__(binary, {"DOCKER_BUILDKIT": "0"})

    def build_command(self, req: BuildRequest) -> List[str]:
        return ["build", "--rm", "--force-rm", *build_flags(req), req.context]

    parse = staticmethod(parse_classic)


class DockerBuildKit(_DaemonStore, Engine):
    """BuildKit through `docker buildx build --load`, or DOCKER_BUILDKIT=1 on a client < 23."""

    name = "buildkit"
    bind_mounts = True
    build_secrets = True
    cache_export = True                # inline: the cache travels in the pushed image
    cache_in_images = False            # BuildKit keeps its own cache
    native_stages = True
    build_platform_arg = True

    def __init__(self, binary: str = "docker", buildx: bool = False):
        super().__init__(binary, {"DOCKER_BUILDKIT": "1"})
        self.buildx = buildx

    def build_command(self, req: BuildRequest) -> List[str]:
        head = ["buildx", "build", "--load"] if self.buildx else ["build"]
        inline = ["--build-arg", "BUILDKIT_INLINE_CACHE=1"] if req.cache_to else []
        return [*head, "--progress=plain", *build_flags(req), *inline, req.context]

    parse = staticmethod(parse_buildkit)
