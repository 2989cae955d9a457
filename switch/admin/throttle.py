"""Login attempts per client address, in memory: a fixed window with a bounded table.

The per-user lock in :mod:`switch.admin.users` stops guessing one password; this stops one
address from walking many user names. The table is bounded so a spray of addresses cannot grow
memory: when full, the oldest windows are dropped.
"""

from __future__ import annotations

from typing import Final

import trio

ATTEMPTS_PER_WINDOW_MAX: Final = 20
WINDOW_S: Final = 60.0
ADDRESSES_MAX: Final = 10_000


class LoginThrottle:
    def __init__(self, attempts_max: int = ATTEMPTS_PER_WINDOW_MAX,
                 window_s: float = WINDOW_S) -> None:
        self._attempts_max = attempts_max
        self._window_s = window_s
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, address: str) -> bool:
        """Count one attempt from ``address``; False when it is over its budget."""
        now = trio.current_time()
        start, count = self._windows.get(address, (now, 0))
        if now - start >= self._window_s:
            start, count = now, 0
        if address not in self._windows and len(self._windows) >= ADDRESSES_MAX:
            for oldest in sorted(self._windows, key=lambda a: self._windows[a][0])[:100]:
                del self._windows[oldest]
        self._windows[address] = (start, count + 1)
        return count < self._attempts_max
