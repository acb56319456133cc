"""A helper process for the e2e tests (a registry, a second docker daemon): started with its
output in a log, waited for until it answers, and stopped afterwards whatever happened."""
import contextlib
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest


@contextlib.contextmanager
def running(cmd: Sequence[str], log_path: Path, answers: Callable[[], bool], tries: int, pause: float,
            stop_timeout: float, **popen) -> Iterator[subprocess.Popen]:
    """Run `cmd` until the block ends; fail the test when it exits before `answers()` is true."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(list(cmd), stdout=log, stderr=subprocess.STDOUT, **popen)
        try:
            for _ in range(tries):
                if answers():
                    break
                if proc.poll() is not None:
                    pytest.fail(f"{Path(cmd[0]).name} exited: {log_path.read_text()[-800:]}")
                time.sleep(pause)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
