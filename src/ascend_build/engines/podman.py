"""Podman (buildah inside): `podman build --layers`, with RUN --mount (bind and secret). Rootless
podman reaches the host's loopback from a build on the host network, so that is its default."""
import contextlib
import shutil
import subprocess
from typing import Iterator, List, Set, Tuple

from .base import BuildRequest, Engine, build_flags
from .parse import parse_classic


class Podman(Engine):
    name = "podman"
    bind_mounts = True
    build_secrets = True
    default_network = "host"
    cache_export = True                # --cache-to REPOSITORY
    runtimes = ("runc", "crun")        # OCI runtimes buildah may run RUN steps with

    def __init__(self, binary: str = "podman"):
        super().__init__(binary)

    def build_command(self, req: BuildRequest) -> List[str]:
        cache_to = ["--cache-to", req.cache_to] if req.cache_to else []
        return ["build", "--layers", "--pull=never", "--format", "docker", *build_flags(req), *cache_to, req.context]

    parse = staticmethod(parse_classic)

    def load_hint(self, image: str) -> str:
        return super().load_hint(image) + f"; an image only docker has: `docker save {image} | podman load`"

    @contextlib.contextmanager
    def build_guard(self) -> Iterator[None]:
        """An interrupted or failed podman build leaves buildah's working containers, and the
        container of a RUN step still running: remove the ones that appeared during this build."""
        before = self._working_containers(), self._run_containers()
        try:
            yield
        finally:
            if self.returncode != 0:
                for runtime, container in self._run_containers() - before[1]:
                    subprocess.run([runtime, "delete", "--force", container], capture_output=True, timeout=60)
                left = self._working_containers() - before[0]
                if left:
                    self.run(["rm", "--force", "--ignore", *sorted(left)], check=False)

    def _working_containers(self) -> Set[str]:
        return set(self.run(["ps", "--all", "--quiet", "--external"], check=False).stdout.split())

    def _run_containers(self) -> Set[Tuple[str, str]]:
        """(OCI runtime, id) of the containers buildah runs RUN steps in (ids start with buildah-)."""
        found = set()
        for runtime in filter(shutil.which, self.runtimes):
            try:
                out = subprocess.run([runtime, "list", "-q"], capture_output=True, text=True, timeout=30).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            found |= {(runtime, cid) for cid in out.split() if cid.startswith("buildah-")}
        return found
