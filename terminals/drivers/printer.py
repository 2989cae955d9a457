"""Host-side receipt printer driver (ESC/POS subset, `terminals.devices.printer`).

ESC/POS has no framing and no acknowledgement: the only answers are DLE EOT status bytes, which
carry no request id. So the driver discards stale input before each status request, waits for
exactly one byte with a deadline, checks its fixed bits, and checks paper before and after a job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import trio

from terminals.devices import printer as proto
from terminals.devices.errors import RemoteProtocolError
from terminals.devices.printer import ReceiptLine, StatusKind
from terminals.drivers.errors import DeviceFault, DeviceLinkError, DeviceTimeout, require_dsr
from terminals.transport.base import Transport, TransportClosed

# Stale bytes we are willing to discard before a status request.
stale_bytes_max = 4096
# How long "is anything already waiting?" looks before a status request.
stale_poll_seconds = 0.002


@dataclass(frozen=True, slots=True)
class PrinterTiming:
    status_timeout_seconds: float = 0.5
    status_retries_max: int = 2
    power_up_seconds: float = 0.2


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    online: bool
    paper_near_end: bool
    paper_out: bool


class PrinterDriver:
    def __init__(self, transport: Transport, *, timing: PrinterTiming = PrinterTiming()) -> None:
        self._transport = transport
        self._timing = timing
        self._lock = trio.Lock()

    async def status(self) -> PrinterStatus:
        """Printer (DLE EOT 1) and paper (DLE EOT 4) status."""
        printer = await self._status_byte(StatusKind.PRINTER)
        paper = proto.decode_paper_status(await self._status_byte(StatusKind.PAPER))
        return PrinterStatus(
            online=not printer & proto.offline_bit,
            paper_near_end=paper.near_end,
            paper_out=paper.out,
        )

    async def print_receipt(self, lines: Sequence[ReceiptLine]) -> PrinterStatus:
        """Print and cut one receipt; DeviceFault("paper out") if it cannot have printed.

        Returns the status after printing (paper near end is for the journal and the operator).
        """
        before = await self.status()
        if before.paper_out or not before.online:
            raise DeviceFault("paper_out", "printer out of paper or offline")
        data = proto.encode_receipt(list(lines))
        async with self._lock:
            await self._send(data)
        after = await self.status()
        if after.paper_out:
            raise DeviceFault("paper_out", "paper ran out while printing")
        return after

    async def _status_byte(self, kind: StatusKind) -> int:
        await require_dsr(
            self._transport.lines, device="printer", settle_seconds=self._timing.power_up_seconds
        )
        async with self._lock:
            for _attempt in range(1 + self._timing.status_retries_max):
                await self._discard_stale_input()
                await self._send(proto.status_request(kind))
                with trio.move_on_after(self._timing.status_timeout_seconds):
                    data = await self._receive()
                    try:
                        return proto.check_status_byte(data[-1])
                    except RemoteProtocolError as error:
                        raise DeviceLinkError(f"printer: {error}") from error
        raise DeviceTimeout(f"printer did not answer DLE EOT {int(kind)}", maybe_executed=False)

    async def _discard_stale_input(self) -> None:
        discarded = 0
        while discarded < stale_bytes_max:
            with trio.move_on_after(stale_poll_seconds) as nothing_waiting:
                discarded += len(await self._receive())
            if nothing_waiting.cancelled_caught:
                return

    async def _send(self, data: bytes) -> None:
        try:
            await self._transport.send_all(data)
        except TransportClosed as error:
            raise DeviceLinkError("printer: serial line closed") from error

    async def _receive(self) -> bytes:
        try:
            return await self._transport.receive_some(stale_bytes_max)
        except TransportClosed as error:
            raise DeviceLinkError("printer: serial line closed") from error
