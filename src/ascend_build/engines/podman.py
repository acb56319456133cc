"""Podman (buildah inside): `podman build --layers`, with RUN --mount (bind and secret). Rootless
podman reaches the host's loopback from a build on the host network, so that is its default."""
import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Set, Tuple

from ..errors import StepTimeout
from .base import CONTAINER_TIMEOUT_ENV, BuildRequest, Engine, build_flags
from .parse import parse_podman
from .registry import refused


class Podman(Engine):
    name = "podman"
    bind_mounts = True
    build_secrets = True
    default_network = "host"
    cache_export = True                # --cache-to REPOSITORY
    runtimes = ("runc", "crun")        # OCI runtimes buildah may run RUN steps with
    store_transport = "containers-storage"
    native_stages = True               # FROM --platform=linux/amd64 (4.3 does not expand $BUILDPLATFORM there)

    inline_cache = False               # its --cache-to is one repository, keyed by content

    def __init__(self, binary: str = "podman"):
        super().__init__(binary)

    def push(self, ref: str, insecure: bool = False) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            digest_file = Path(tmp) / "digest"
            result = self.run(["push", "--digestfile", str(digest_file), *(["--tls-verify=false"] if insecure else []),
                               "--", ref], timeout=1800, check=False)
            if result.returncode != 0:
                raise refused(self.binary, ref, result.stdout + result.stderr)
            return digest_file.read_text().strip()

    def publish_manifest(self, ref: str, images: Sequence[str], insecure: bool = False) -> str:
        """`podman manifest create/add/push`."""
        flag = ["--tls-verify=false"] if insecure else []
        self.run(["manifest", "rm", ref], check=False)
        self.run(["manifest", "create", ref])
        for image in images:
            self.run(["manifest", "add", *flag, ref, f"docker://{image}"], timeout=300)
        with tempfile.TemporaryDirectory() as tmp:
            digest_file = Path(tmp) / "digest"
            result = self.run(["manifest", "push", "--all", "--digestfile", str(digest_file), *flag, ref, f"docker://{ref}"],
                              timeout=600, check=False)
            if result.returncode != 0:
                raise refused(self.binary, ref, result.stdout + result.stderr)
            return digest_file.read_text().strip()

    def build_command(self, req: BuildRequest) -> List[str]:
        cache_to = ["--cache-to", req.cache_to] if req.cache_to else []
        return ["build", "--layers", "--pull=never", "--format", "docker", *build_flags(req), *cache_to, req.context]

    parse = staticmethod(parse_podman)

    def run_container(self, image: str, command: Sequence[str] = (), stdin: Optional[str] = None,
                      timeout: Optional[float] = None, **how) -> subprocess.CompletedProcess:
        """As Engine's; where `podman run` cannot set the rlimits it always sets (some sandboxes and
        nested containers, where its build steps run all the same), the run goes through buildah,
        which shares podman's image store."""
        result = super().run_container(image, command, stdin, timeout, **how)
        if result.returncode == 0 or "error setting rlimit" not in result.stderr or how.get("flags") or not shutil.which("buildah"):
            return result
        return _buildah_run(image, command, stdin, min(timeout or self.container_timeout, self.container_timeout), **how)

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


def _buildah_run(image: str, command: Sequence[str], stdin: Optional[str], timeout: float, entrypoint: Optional[str] = None,
                 user: Optional[str] = None, network: Optional[str] = None, step: str = "", fix: str = "",
                 **_unused) -> subprocess.CompletedProcess:
    """A throwaway buildah working container of `image` running `entrypoint command`."""
    try:
        made = subprocess.run(["buildah", "from", "--pull-never", "--quiet", image], capture_output=True, text=True, timeout=timeout)
        if made.returncode != 0:
            return made
        container = made.stdout.strip().splitlines()[-1]
        try:
            args = ["buildah", "run", *(["--network", network] if network else []), *(["--user", user] if user else []),
                    container, "--", *([entrypoint] if entrypoint else []), *command]
            return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout)
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise StepTimeout(f"{step or f'`buildah run` of {image}'} did not end in {timeout:g} s: its working container "
                          "was removed", fix=(f"{fix}; " if fix else "") + f"a slower step needs a longer deadline: "
                          f"{CONTAINER_TIMEOUT_ENV}=SECONDS") from None
