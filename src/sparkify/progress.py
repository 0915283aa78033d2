"""Progress on stderr while a run works, and the timings it reports at the end.

Each finished stage is one line, `HH:MM:SS list: 0.12 s`: no source location
(rich's Console.log would add `progress.py:NN`), and the same words the kill
tests look for.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


class Progress:
    """Shows the stage a run is in (with a spinner on a terminal) and times each stage."""

    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, files: int | None = None) -> Iterator[None]:
        label = f"{name}" + (f" ({files:,} new files)" if files is not None else "")
        start = time.perf_counter()
        if self.quiet:
            yield
        else:
            with self.console.status(f"[bold]{label}[/bold]…"):
                yield
        self.timings[name] = round(time.perf_counter() - start, 3)
        if not self.quiet:
            self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {label}: {self.timings[name]:.2f} s",
                               highlight=False)
