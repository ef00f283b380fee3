"""Progress bars (rich) that can be silenced with ``--quiet``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from linas._failpoint import reached


class Reporter:
    """Prints stage messages and shows progress bars unless quiet."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True, quiet=quiet)

    def info(self, message: str) -> None:
        self.console.print(message)

    def warn(self, message: str) -> None:
        """A warning: printed (stderr) even when quiet."""
        Console(stderr=True).print(f"warning: {message}", markup=False)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar; yields ``advance(n)`` (each call is the kill point
        ``step:<description>`` of :mod:`linas._failpoint`)."""
        point = f"step:{description}"
        if self.quiet:

            def silent(n: int = 1) -> None:
                reached(point)

            yield silent
            return
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=False) as bar:
            task_id = bar.add_task(description, total=total)

            def advance(n: int = 1) -> None:
                bar.advance(task_id, n)
                reached(point)

            yield advance
