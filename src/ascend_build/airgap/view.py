"""How save and load look to a person: rich progress bars on a terminal (bytes while the archive
is written or verified, blobs while skopeo copies), one plain line per step otherwise."""
import contextlib
import time
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from ..units import human_bytes
from .transfer import View

COPIED = ("Copying blob", "Copying config")


class TransferView(View):
    def __init__(self, console: Console):
        self.console = console
        self.progress: Optional[Progress] = None

    def __enter__(self) -> "TransferView":
        if self.console.is_terminal:
            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.fields[amount]}"), TimeElapsedColumn(), console=self.console)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress:
            self.progress.__exit__(*exc)

    def info(self, text: str) -> None:
        (self.progress.console if self.progress else self.console).print(Text(text))

    def _done(self, label: str, started: float, amount: str) -> None:
        if not self.progress:
            self.console.print(Text(f"{label}: {amount} in {time.monotonic() - started:.1f} s"))

    @contextlib.contextmanager
    def bytes(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        started, seen = time.monotonic(), [0]
        task = self.progress.add_task(label, total=total or 1, amount="") if self.progress else None

        def advance(count: int) -> None:
            seen[0] += count
            if self.progress:
                self.progress.update(task, completed=seen[0], amount=f"{human_bytes(seen[0])} of {human_bytes(total)}")

        yield advance
        if self.progress:
            self.progress.update(task, completed=total or 1)
        self._done(label, started, human_bytes(seen[0]))

    @contextlib.contextmanager
    def copy(self, label: str, blobs: Optional[int] = None) -> Iterator[Callable[[str], None]]:
        started, seen = time.monotonic(), [0]
        task = self.progress.add_task(label, total=blobs, amount="") if self.progress else None

        def on_line(line: str) -> None:
            if line.startswith(COPIED):
                seen[0] += 1
                if self.progress:
                    self.progress.update(task, completed=seen[0], amount=f"{seen[0]}{f'/{blobs}' if blobs else ''} blobs")

        yield on_line
        if self.progress:
            self.progress.update(task, completed=blobs or seen[0], total=blobs or seen[0] or 1)
        self._done(label, started, f"{seen[0]} blobs")
