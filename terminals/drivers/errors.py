"""Typed errors every driver raises, so the ATM firmware can tell "device said no" from "device
said nothing" from "the line is gone"."""

from __future__ import annotations

import trio

from terminals.transport.base import ModemLines


class DriverError(Exception):
    """Base of every driver error."""


class DeviceTimeout(DriverError):
    """The device did not answer in time (after the retries the protocol allows).

    `maybe_executed` is True when the device may have acted on the command before going quiet
    (it acknowledged it, or its acknowledgement may have been lost): the caller must check the
    device's state instead of assuming nothing happened (crucial for a dispense).
    """

    def __init__(self, message: str, *, maybe_executed: bool) -> None:
        super().__init__(message)
        self.maybe_executed = maybe_executed


class DeviceLinkError(DriverError):
    """The line is unusable: the device kept NAKing our frames, or the port closed."""


class DeviceFault(DriverError):
    """The device answered and reported a failure (jam, empty cassette, paper out...).

    `code` is the device's own error code; `detail` a human-readable reason.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{detail} (device code {code})")
        self.code = code
        self.detail = detail


class DeviceOffline(DriverError):
    """DSR is low: the device is not powered or not connected."""


async def require_dsr(lines: ModemLines, *, device: str, settle_seconds: float) -> None:
    """Return once DSR is up; wait `settle_seconds` for a device still powering up, then raise
    DeviceOffline. (DSR comes from the out-of-band `ModemLines`; ptys cannot carry it.)"""
    with trio.move_on_after(settle_seconds):
        while not lines.dsr:
            await lines.wait_changed()
        return
    raise DeviceOffline(f"{device}: DSR is low (not powered or not connected)")
