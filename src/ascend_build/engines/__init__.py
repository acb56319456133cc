"""Container engines: every call of docker, podman, buildah or skopeo goes through these modules,
except the fast path's one `image inspect` (fastpath.py answers before the CLI is imported).
Other programs run where their work is: uv (fetch/resolve.py), openssl (catalog/signed.py),
npu-smi (doctor.py), a C compiler (demo/), bash and pip inside an image (capture.py, probe.py)."""
