"""EPP emulator: serves `PinPadModel` over a transport, runs the entry timeout, and plays a
simulated customer who types the PIN (or, per the fault schedule, cancels or walks away).

`press()` lets an interactive front end type keys itself (then pass `customer_pin=None`).
"""

from __future__ import annotations

import trio

from terminals.devices import pinpad as proto
from terminals.devices.events import Frame
from terminals.devices.receiving import receive_event
from terminals.emulators.base import PoweredDevice
from terminals.emulators.faults import Fault, FaultSchedule
from terminals.emulators.pinpad_model import PinPadModel
from terminals.transport.base import Transport, TransportClosed

# Pause between the simulated customer's key presses.
customer_key_interval_seconds = 0.005


class PinPadEmulator(PoweredDevice):
    """The EPP on its serial line."""

    def __init__(
        self,
        model: PinPadModel | None = None,
        faults: FaultSchedule | None = None,
        *,
        customer_pin: str | None = "1234",
    ) -> None:
        super().__init__()
        self.model = model or PinPadModel()
        self.faults = faults or FaultSchedule()
        self.customer_pin = customer_pin
        self._transport: Transport | None = None
        self._send_lock = trio.Lock()
        self._entry_scope: trio.CancelScope | None = None

    async def serve(self, transport: Transport) -> None:
        """Answer commands until the transport closes (TransportClosed) or cancellation."""
        self._transport = transport
        self.attach_lines(transport.lines)
        parser = proto.PinPadFrameParser()
        closed: TransportClosed | None = None
        async with trio.open_nursery() as nursery:
            try:
                await self._answer_commands(transport, parser, nursery)
            except TransportClosed as error:
                closed = error  # re-raised bare, outside the nursery's exception group
                nursery.cancel_scope.cancel()
        if closed is not None:
            raise closed

    async def _answer_commands(
        self, transport: Transport, parser: proto.PinPadFrameParser, nursery: trio.Nursery
    ) -> None:
        while True:
            event = await receive_event(transport, parser)
            if not self.powered or not isinstance(event, Frame):
                continue  # corrupt frames are dropped: the host's timeout resends
            if self.faults.check(Fault.PINPAD_SILENT):
                continue
            was_idle = self.model.entry is None
            await self._send(self.model.handle(event.text))
            if was_idle and self.model.entry is not None:
                nursery.start_soon(self._run_entry)

    async def press(self, key: str) -> None:
        """Press one key on the keypad (interactive use and the simulated customer)."""
        await self._send(self.model.press(key))

    async def _run_entry(self) -> None:
        """The entry timeout, and the simulated customer, for one PIN entry."""
        entry = self.model.entry
        if entry is None:
            return
        with trio.move_on_after(entry.request.timeout_seconds):
            await self._customer(entry.request.length_max)
            while self.model.entry is entry:  # the customer stopped typing: wait for timeout
                await trio.sleep(0.01)
            return
        if self.model.entry is entry:
            await self._send(self.model.expire_entry())

    async def _customer(self, length_max: int) -> None:
        if self.customer_pin is None or self.faults.check(Fault.PIN_TIMEOUT):
            return  # nobody types: the entry times out
        if self.faults.check(Fault.PIN_CANCEL):
            keys = [self.customer_pin[0], "cancel"]
        else:
            keys = [*self.customer_pin[:length_max], "enter"]
        for key in keys:
            await trio.sleep(customer_key_interval_seconds)
            await self.press(key)

    async def _send(self, texts: list[bytes]) -> None:
        if self._transport is None or not self.powered:
            return
        async with self._send_lock:
            for text in texts:
                await self._transport.send_all(proto.encode_frame(text))
