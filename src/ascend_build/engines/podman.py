"""Podman (buildah inside): `podman build --layers`, which supports RUN --mount=type=bind."""
import shutil
import subprocess
from typing import Iterator, List, Set, Tuple

from .base import BuildRequest, Event
from .docker import Docker, _common_args


class Podman(Docker):
    name = "podman"
    supports_mount = True

    def __init__(self, binary: str = "podman"):
        super(Docker, self).__init__(binary, None)

    def build_args(self, req: BuildRequest) -> List[str]:
        return ["build", "--layers", "--pull=never", "--format", "docker", *_common_args(req), req.context]


    def build(self, req: BuildRequest) -> Iterator[Event]:
        """An interrupted or failed podman build leaves buildah's working containers, and the
        container of a RUN step still running: remove the ones that appeared during this build."""
        before = self._working_containers(), _run_containers()
        self.returncode = None
        try:
            yield from super().build(req)
        finally:
            if self.returncode != 0:
                for runtime, container in _run_containers() - before[1]:
                    subprocess.run([runtime, "delete", "--force", container], capture_output=True, timeout=60)
                left = self._working_containers() - before[0]
                if left:
                    self.run(["rm", "--force", "--ignore", *sorted(left)], check=False)

    def _working_containers(self) -> Set[str]:
        return set(self.run(["ps", "--all", "--quiet", "--external"], check=False).stdout.split())


def _run_containers() -> Set[Tuple[str, str]]:
    """(OCI runtime, id) of the containers buildah runs RUN steps in (ids start with buildah-)."""
    found = set()
    for runtime in filter(shutil.which, ("runc", "crun")):
        try:
            out = subprocess.run([runtime, "list", "-q"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        found |= {(runtime, cid) for cid in out.split() if cid.startswith("buildah-")}
    return found
