"""Standard output, for machines (`--json`, `plan`'s Dockerfile): written and flushed at once, so
that a write that fails (a full disk behind `> FILE`, a pipe whose reader left) is one
OutputError, never a traceback nor a message of the interpreter at exit. Standard library and
errors.py only (fastpath.py uses it before the CLI's libraries are imported)."""
import os
import sys

from .errors import OutputError


def write_out(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as err:
        _drop_pending()
        raise OutputError(f"cannot write to standard output: {err.strerror or err}",
                          fix="free space where the output goes (or let the reader of the pipe read it all), then run again") from None


def _drop_pending() -> None:
    """Point the stdout descriptor at /dev/null, so that what is still buffered goes nowhere at
    exit instead of failing again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass
