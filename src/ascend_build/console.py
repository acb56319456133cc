"""Output helpers shared by the commands: people read stderr, machines read stdout."""
import json
import sys
from typing import Any

from rich.console import Console


def make_console() -> Console:
    """Human output goes to stderr so that `--json` on stdout stays clean."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")
