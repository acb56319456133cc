"""How a build looks to a person: a live table of stages and transfers on a terminal, plain
lines otherwise; `-v` adds the engine's own output."""
import threading
import time
from typing import Dict, List, Optional

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .engines.base import StageEvent
from .server import Transfer
from .units import human_bytes

STYLE = {"waiting": "dim", "running": "cyan", "cached": "green", "built": "green", "failed": "bold red"}


class ConsoleBuildView:
    """A BuildView for the CLI. Use as a context manager around the build."""

    def __init__(self, console: Console, verbose: bool = False):
        self.console, self.verbose = console, verbose
        self.status: Dict[str, str] = {}
        self.started: Dict[str, float] = {}
        self.seconds: Dict[str, float] = {}
        self.transfers: List[Transfer] = []
        self.serve_bytes = 0
        self.lock = threading.Lock()
        self.live: Optional[Live] = None

    def __enter__(self) -> "ConsoleBuildView":
        if self.console.is_terminal:
            self.live = Live(console=self.console, get_renderable=self._render, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def _print(self, text: str, style: str = "") -> None:
        (self.live.console if self.live else self.console).print(Text(text, style=style))

    # -- BuildView ------------------------------------------------------------------------------
    def info(self, text: str) -> None:
        self._print(text, "yellow" if text.startswith("warning") else "")

    def stages(self, names: List[str], serve_bytes: int) -> None:
        self.status = {name: "waiting" for name in names}
        self.serve_bytes = serve_bytes

    def event(self, event: StageEvent) -> None:
        with self.lock:
            self.status[event.stage] = "running" if event.status == "started" else event.status
            if event.status == "started":
                self.started[event.stage] = time.monotonic()
            else:
                self.seconds[event.stage] = event.seconds
        if not self.live and event.status != "started":
            self._print(f"stage {event.stage}: {event.status} ({event.seconds:.1f} s)", STYLE.get(event.status, ""))
        elif not self.live:
            self._print(f"stage {event.stage}: running")

    def log(self, line: str) -> None:
        if self.verbose:
            self._print(line, "dim")

    def transfer(self, transfer: Transfer) -> None:
        with self.lock:
            self.transfers.append(transfer)
        if not self.live:
            state = "sent" if transfer.complete else "interrupted"
            self._print(f"package {transfer.file}: {state} {human_bytes(transfer.bytes)} in {transfer.seconds:.1f} s")

    # -- live rendering -------------------------------------------------------------------------
    def _render(self):
        table = Table(box=None, show_header=False, pad_edge=False)
        with self.lock:
            for name, status in self.status.items():
                if status == "running":
                    detail = f"{time.monotonic() - self.started[name]:.0f} s"
                elif name in self.seconds:
                    detail = f"{self.seconds[name]:.1f} s"
                else:
                    detail = ""
                table.add_row(Text(name, style="bold"), Text(status, style=STYLE.get(status, "")), detail)
            sent = sum(t.bytes for t in self.transfers if t.complete)
            count = sum(1 for t in self.transfers if t.complete)
        rows = [table]
        if count:
            rows.append(Text(f"packages served: {count} files, {human_bytes(sent)} of {human_bytes(self.serve_bytes)}", style="dim"))
        return Group(*rows)
