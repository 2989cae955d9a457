"""A progress bar on stderr for long reports, drawn only when stderr is a terminal.

Reports work through a day hour by hour; the bar advances per chunk so an operator running a
report over a million messages sees it move. Piped or redirected output gets nothing (no
carriage returns in log files), and the bar is one line, redrawn in place.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

bar_width_chars = 30


class Progress:
    def __init__(self, total: int, label: str, *, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.total = max(1, total)
        self.label = label
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = self._stream.isatty() if enabled is None else enabled
        self._started = time.monotonic()

    def advance(self, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        if self.enabled:
            self._stream.write("\r" + self.line())
            self._stream.flush()

    def line(self) -> str:
        filled = bar_width_chars * self.done // self.total
        elapsed = time.monotonic() - self._started
        return (f"{self.label} [{'#' * filled}{'.' * (bar_width_chars - filled)}] "
                f"{self.done}/{self.total} {elapsed:5.1f}s")

    def close(self) -> None:
        if self.enabled:
            self._stream.write("\n")
            self._stream.flush()


def silent(total: int = 1) -> Progress:
    return Progress(total, "", enabled=False)
