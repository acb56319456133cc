"""The one way tests call the command line: `python -m ascend_build` of the interpreter that runs
the tests, in a child process (any clone, any path)."""
import subprocess
import sys

CLI = [sys.executable, "-m", "ascend_build"]


def cli(*args, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)
