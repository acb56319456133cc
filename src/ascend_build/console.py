"""Output helpers shared by the commands: people read stderr, machines read stdout."""
import json
from typing import Any

from rich.console import Console

from .stdout import write_out


def make_console() -> Console:
    """Human output goes to stderr so that `--json` on stdout stays clean."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """`data` as JSON on stdout; a write that fails is one OutputError (stdout.py)."""
    write_out(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
