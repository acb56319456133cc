"""Podman (buildah inside): `podman build --layers`, which supports RUN --mount=type=bind."""
from typing import List

from .base import BuildRequest
from .docker import Docker, _common_args


class Podman(Docker):
    name = "podman"
    supports_mount = True

    def __init__(self, binary: str = "podman"):
        super(Docker, self).__init__(binary, None)

    def build_args(self, req: BuildRequest) -> List[str]:
        return ["build", "--layers", "--pull=never", "--format", "docker", *_common_args(req), req.context]

