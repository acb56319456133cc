"""Where a build's time goes: seconds per phase (config, check, engine probe, base image,
context, server, engine, report), for `build --timings` and the report's `timings`."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

PHASES = ("config", "check", "engine probe", "base image", "context", "server", "engine", "report")


class Timings:
    """Seconds per phase; a phase entered twice adds up (the server starts and stops)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def as_dict(self) -> dict[str, float]:
        """Every phase in order (0.0 for one that did not run), rounded to the millisecond."""
        return {name: round(self.seconds.get(name, 0.0), 3) for name in PHASES}
