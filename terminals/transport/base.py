"""What drivers and emulators need from a serial line, and the modem-control lines.

RS-232 control lines (DTR/RTS from the ATM, DSR/CTS from the device) cannot be carried by a
pseudo-terminal: the TIOCMGET/TIOCMSET ioctls fail with ENOTTY on a pty. So both ends of a link
share one `ModemLines` object instead (out of band). A device emulator raises DSR while it is
powered; a driver can tell "device switched off" from "device slow" without waiting for a timeout.
"""

from __future__ import annotations

from typing import Protocol

import trio


class TransportClosed(Exception):
    """The other end hung up (pty closed, stream closed) or this end was closed."""


class Transport(Protocol):
    """A full-duplex byte stream (a serial line)."""

    lines: ModemLines

    async def send_all(self, data: bytes) -> None:
        """Write all of `data`; raises TransportClosed."""

    async def receive_some(self, max_bytes: int) -> bytes:
        """Wait for at least one byte, return up to `max_bytes`; raises TransportClosed."""

    async def aclose(self) -> None:
        """Close this end; the peer sees TransportClosed."""


class ModemLines:
    """The RS-232 control lines of one link, shared by both ends (out of band)."""

    def __init__(self) -> None:
        self.dtr = False  # data terminal ready: the ATM (host) side is up
        self.rts = False  # request to send: the host wants to talk
        self.dsr = False  # data set ready: the device is powered and ready
        self.cts = False  # clear to send: the device can receive
        self._changed = trio.Event()

    def set(
        self,
        *,
        dtr: bool | None = None,
        rts: bool | None = None,
        dsr: bool | None = None,
        cts: bool | None = None,
    ) -> None:
        """Change some lines and wake everyone waiting in `wait_changed`."""
        for name, value in (("dtr", dtr), ("rts", rts), ("dsr", dsr), ("cts", cts)):
            if value is not None:
                setattr(self, name, value)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Sleep until some line changes."""
        await self._changed.wait()

    def snapshot(self) -> dict[str, bool]:
        """The four lines, for logs and the journal."""
        return {"dtr": self.dtr, "rts": self.rts, "dsr": self.dsr, "cts": self.cts}
