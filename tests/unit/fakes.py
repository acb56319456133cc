"""Fake docker clients for the unit tests: sh scripts (a `#!` line cannot hold an interpreter
path with a space, so never a Python one) that log each call to `<client>.calls`."""
from pathlib import Path

_IIDFILE = """for arg in "$@"; do
  case "$prev" in --iidfile) echo sha256:1 > "$arg" ;; esac
  prev="$arg"
done
exit 0
"""


def docker_client(path: Path, answers: str) -> Path:
    """A docker client at `path`: logs its arguments, answers with the `case "$1 $2"` branches
    `answers`, writes sha256:1 to the file after `--iidfile` and exits 0."""
    path.write_text('#!/bin/sh\necho "$*" >> "$0.calls"\ncase "$1 $2" in\n' + answers + "esac\n" + _IIDFILE)
    path.chmod(0o755)
    return path
