"""The problem codes of `check`'s own mechanics, as constants, and what each means (its level
first); each component adds the codes of its rules (Component.problems; all together:
components.registry.problem_codes). The codes are stable: scripts read them from `check --json`."""
from typing import Dict

# integrity (catalog/integrity.py)
RUN_TRUNCATED = "run-truncated"
RUN_CORRUPT = "run-corrupt"
RUN_UNVERIFIED = "run-unverified"
RUN_TRAILING_DATA = "run-trailing-data"
WHEEL_CORRUPT = "wheel-corrupt"
TARBALL_CORRUPT = "tarball-corrupt"
CHECKSUM_MISMATCH = "checksum-mismatch"
PUBLISHED_MISMATCH = "published-mismatch"
SIGNATURE_INVALID = "signature-invalid"
CERTIFICATE_REVOKED = "certificate-revoked"
ZIP_NOT_OFFICIAL = "zip-not-official"
ZIP_TOO_LARGE = "zip-too-large"
UNREADABLE = "unreadable"
METADATA_TOO_LARGE = "metadata-too-large"
CHECKSUM_FILE_UNREADABLE = "checksum-file-unreadable"
HASH_CACHE_UNWRITABLE = "hash-cache-unwritable"
# scan and selection (catalog/check.py, catalog/select.py)
UNRECOGNISED_FILE = "unrecognised-file"
UNSAFE_FILE_NAME = "unsafe-file-name"
NOT_A_REGULAR_FILE = "not-a-regular-file"
MISSING_COMPONENT = "missing-component"
AMBIGUOUS_SLOT = "ambiguous-slot"
PIN_NOT_FOUND = "pin-not-found"
PIN_UNKNOWN_SLOT = "pin-unknown-slot"
CHIP_AMBIGUOUS = "chip-ambiguous"
CHIP_MISMATCH = "chip-mismatch"
ARCH_MISMATCH = "arch-mismatch"
DUPLICATE_FILE_NAME = "duplicate-file-name"
# Python requirements, resolved offline (catalog/closure.py)
MISSING_REQUIREMENT = "missing-requirement"
REQUIREMENT_CONFLICT = "requirement-conflict"
WHEEL_TARGET_MISMATCH = "wheel-target-mismatch"
REQUIREMENT_UNREADABLE = "requirement-unreadable"
REQUIREMENTS_UNRESOLVED = "requirements-unresolved"
PYTHON_TOOLS_MISSING = "python-tools-missing"          # a stage's tools import packages the folder lacks
CUDA_IN_IMAGE = "cuda-in-image"                        # nvidia-*/cuda-* wheels, a CUDA torch, what python_deps.yaml refuses
PYTHON_PIN_MISMATCH = "python-pin-mismatch"            # a wheel against the pins of the CANN release or a stage's (torch)
# compatibility (catalog/compat.py)
HOST_ONLY_PACKAGE = "host-only-package"
VERSION_MISMATCH = "version-mismatch"
CANN_FORMS_MIXED = "cann-forms-mixed"
PYTHON_MISMATCH = "python-mismatch"
ABI_MISMATCH = "abi-mismatch"
CANN_PYTHON_UNSUPPORTED = "cann-python-unsupported"

PROBLEM_CODES: Dict[str, str] = {
    # integrity (catalog/integrity.py)
    RUN_TRUNCATED: "error: a .run is shorter than its makeself header announces (or empty)",
    RUN_CORRUPT: "error: a .run payload does not match the header's SHA256/MD5",
    RUN_UNVERIFIED: "warning: a .run header has no skip/filesizes or no SHA/MD5: not (fully) verifiable",
    RUN_TRAILING_DATA: "warning: bytes after the payload the .run header announces",
    WHEEL_CORRUPT: "error: a wheel's zip is damaged (CRC), lacks RECORD or a member differs from RECORD",
    TARBALL_CORRUPT: "error: a .tar.gz does not decompress/read to the end",
    CHECKSUM_MISMATCH: "error: sha256 differs from SHA256SUMS or <file>.sha256 next to it",
    PUBLISHED_MISMATCH: "error: Huawei publishes the file's name with another sha256 (catalog/published.json)",
    SIGNATURE_INVALID: "error: the inner package of a signed zip does not verify against a trusted root (changed bytes, unknown CA, no .cms)",
    CERTIFICATE_REVOKED: "error: a signed zip's CRL revokes its signer, or is not signed by the root",
    ZIP_NOT_OFFICIAL: "error: a CANN .zip does not hold one package of the same name with its .cms, or cannot be unpacked",
    ZIP_TOO_LARGE: "error: a zip member unpacks to more than it announces or than the zip can hold (zip bomb)",
    UNREADABLE: "error: a selected file cannot be read",
    METADATA_TOO_LARGE: "error: a RECORD, zip directory, tar header or .run header field is larger than ascend-build reads",
    CHECKSUM_FILE_UNREADABLE: "error: SHA256SUMS or <file>.sha256 cannot be read (or is over 16 MiB)",
    HASH_CACHE_UNWRITABLE: "warning: .ascend-build is a file or cannot be written: no hash cache",
    # scan and selection (catalog/check.py, catalog/select.py)
    UNRECOGNISED_FILE: "warning: a package-like file (.run/.whl/.tar.gz...) whose name fits no known pattern",
    UNSAFE_FILE_NAME: "error: a package's name holds characters other than letters, digits and . _ + - (or starts with -)",
    NOT_A_REGULAR_FILE: "error: a package name is a link loop, a broken link, or a device, FIFO or folder",
    MISSING_COMPONENT: "error: no file for a slot the target needs",
    AMBIGUOUS_SLOT: "error: several files fit one slot and none is pinned",
    PIN_NOT_FOUND: "error: `pins:` names a file that is not a package of that slot",
    PIN_UNKNOWN_SLOT: "error: `pins:` names a slot that does not exist",
    CHIP_AMBIGUOUS: "error: kernels/ops for several chips and no `chip:` in the config",
    CHIP_MISMATCH: "error: no kernels/ops package for the configured chip",
    ARCH_MISMATCH: "error: packages for another arch than the build platform",
    DUPLICATE_FILE_NAME: "error: two delivered files have the same name (top level and packages/)",
    # Python requirements, resolved offline (catalog/closure.py)
    MISSING_REQUIREMENT: "error: wheels or requirements files need Python packages with no fitting wheel in the folder (all listed, with the `fetch` command)",
    REQUIREMENT_CONFLICT: "error: a requirement excludes the version of a package another file brings",
    WHEEL_TARGET_MISMATCH: "error: a selected wheel's platform tag or Requires-Python does not fit the image",
    REQUIREMENT_UNREADABLE: "warning: a requirements file line that is neither a requirement nor an option: not checked",
    REQUIREMENTS_UNRESOLVED: "warning: the image's Python is unknown, so the wheels' requirements are not resolved",
    CUDA_IN_IMAGE: "error: the stages would install CUDA distributions (nvidia-*, cuda-*), a torch that requires them (a CUDA build), or what a component refuses beside its distributions (never_beside: the community triton)",
    PYTHON_PIN_MISMATCH: "error: the image would get a Python package in a version the torch release cannot run with (numpy 2 with torch < 2.3); a warning for CANN 8.1-8.3's official pins (numpy==1.24.0, protobuf==3.20)",
    PYTHON_TOOLS_MISSING: "note: CANN's own Python tools import packages with no wheel in the folder (error 50001 on the first NPU operator)",
    # compatibility (catalog/compat.py)
    HOST_ONLY_PACKAGE: "warning: a driver/firmware package: host only, never installed in an image; ignored",
    VERSION_MISMATCH: "error: kernels/ops or NNAL version differs from the toolkit version",
    CANN_FORMS_MIXED: "error: the toolkit and the kernels/ops are not the same form (pip wheels vs .run installers)",
    PYTHON_MISMATCH: "error: a package's Python tag differs from the image's Python (or from the others'), or `python:` from the base image's",
    ABI_MISMATCH: "error: the packages that name a C++ ABI, cxx_abi and the torch wheel's libraries disagree",
    CANN_PYTHON_UNSUPPORTED: "error: the image's Python is outside the range the CANN release supports",
}
