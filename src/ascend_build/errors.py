"""One exception hierarchy; the CLI turns each into one message and an exit code."""
from typing import Optional


class AscendBuildError(Exception):
    """A user-facing error: what went wrong, where, and how to fix it."""

    exit_code = 1

    def __init__(self, message: str, fix: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.fix = fix


class ConfigError(AscendBuildError):
    """The config file or a command-line option is wrong."""


class PackageError(AscendBuildError):
    """A package file is missing, corrupt, unknown or does not fit the others."""


class ServerError(AscendBuildError):
    """The package server could not start (port in use, bad address...)."""


class PortInUse(ServerError):
    """The package server's port is taken by another process."""


class EngineError(AscendBuildError):
    """The container engine is missing or not answering."""


class HostError(AscendBuildError):
    """The NPU host is not ready for the image (driver, devices, npu-smi): `doctor` says what."""


class ImageError(AscendBuildError):
    """An image's labels or records are not what ascend-build writes (untrusted input refused)."""


class BuildError(AscendBuildError):
    """The image build failed."""


class StepTimeout(AscendBuildError):
    """A step inside a container did not end before its deadline: the container was removed."""


class Interrupted(AscendBuildError):
    """Ctrl-C: everything was cleaned up, exit 130."""

    exit_code = 130


class OutputError(AscendBuildError):
    """An output path cannot be written, or writing it would replace an input."""


class BusyError(AscendBuildError):
    """Another ascend-build run holds the working folder (and --no-wait was given)."""


class ArchiveError(AscendBuildError):
    """A transfer archive is damaged, incomplete or not one `ascend-build save` wrote."""
