"""What `fetch` shows: the plan, one progress bar per download, a summary."""
from typing import List

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)

from . import FetchPlan, FetchResult, describe
from .download import Progress as OnBytes
from .resolve import Wheel
from ..progress import human_bytes


class FetchView:
    """A rich progress display for `fetch` (a context manager)."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=False)

    def __enter__(self) -> "FetchView":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def plan(self, plan: FetchPlan) -> None:
        for line in describe(plan):
            self.console.print(escape(line))

    def resolved(self, wheels: List[Wheel]) -> None:
        self.console.print(f"resolved {len(wheels)} wheels")

    def on_wheel(self, wheel: Wheel) -> OnBytes:
        task = self.progress.add_task(escape(wheel.filename), total=wheel.size)

        def update(done: int, total) -> None:
            self.progress.update(task, completed=done, total=total)
        return update

    def note(self, line: str) -> None:
        self.console.print(f"[yellow]note[/] {escape(line)}")

    def summary(self, result: FetchResult, dry_run: bool = False) -> None:
        if dry_run:
            for wheel in result.pending:
                size = human_bytes(wheel.size) if wheel.size is not None else "size unknown"
                self.console.print(f"  would download {escape(wheel.filename)} ({size})")
            total = sum(w.size or 0 for w in result.pending)
            unknown = sum(w.size is None for w in result.pending)
            self.console.print(f"dry run: {len(result.pending)} wheels to download ({human_bytes(total)}"
                               f"{f', {unknown} of unknown size' if unknown else ''}), {len(result.present)} "
                               "already here; nothing was written")
            return
        self.console.print(f"[green]fetched[/] {len(result.fetched)} wheels ({human_bytes(result.bytes)}), "
                           f"{len(result.present)} already here; `check` and `build` need no network for them now")
