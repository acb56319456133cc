"""How long and how slowly a download may go on: an overall deadline per file and a low-speed
limit (fewer than `min_speed` bytes a second, averaged over `window` seconds, stops it), like
curl's --max-time and --speed-limit/--speed-time. Defaults can be changed in the environment."""
from collections import deque
from dataclasses import dataclass
from typing import Mapping, Optional

from ..limits import positive
from ..units import human_bytes

MIN_SPEED_ENV = "ASCEND_BUILD_FETCH_MIN_SPEED"
WINDOW_ENV = "ASCEND_BUILD_FETCH_SPEED_TIME"
DEADLINE_ENV = "ASCEND_BUILD_FETCH_DEADLINE"


@dataclass(frozen=True)
class Limits:
    min_speed: float = 1024              # bytes a second...
    window: float = 60                   # ...averaged over this many seconds
    deadline: float = 4 * 3600           # seconds for one file, from the request to its last byte
    connect: float = 30                  # seconds to connect
    unknown_size: int = 16 << 30         # bytes, when neither the index nor the server says the size

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "Limits":
        """The defaults, changed by ASCEND_BUILD_FETCH_MIN_SPEED (bytes/s), _SPEED_TIME and
        _DEADLINE (seconds); ConfigError for a value that is not a positive number."""
        return cls(min_speed=positive(environ, MIN_SPEED_ENV, cls.min_speed),
                   window=positive(environ, WINDOW_ENV, cls.window),
                   deadline=positive(environ, DEADLINE_ENV, cls.deadline))

    @property
    def read_timeout(self) -> float:
        """The longest wait for one read: a server that sends nothing is stopped by it."""
        return min(self.window, self.deadline)


class Meter:
    """Watches one response: `check` says why it must stop, or None."""

    def __init__(self, limits: Limits, started: float):
        self.limits = limits
        self.started = started
        self.samples = deque([(started, 0)])         # (time, bytes received by then)

    def check(self, received: int, now: float) -> Optional[str]:
        limits = self.limits
        if now - self.started > limits.deadline:
            return f"it took longer than {limits.deadline:g} s ({DEADLINE_ENV})"
        samples = self.samples
        while len(samples) > 1 and samples[1][0] <= now - limits.window:
            samples.popleft()
        since, then = samples[0]
        if now - since >= limits.window and (received - then) / (now - since) < limits.min_speed:
            return (f"it was slower than {human_bytes(limits.min_speed)}/s over {limits.window:g} s "
                    f"({MIN_SPEED_ENV}, {WINDOW_ENV})")
        if now - samples[-1][0] >= limits.window / 16:
            samples.append((now, received))
        return None
