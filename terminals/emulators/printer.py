"""Receipt printer emulator: parses ESC/POS back into receipts and answers DLE EOT status.

Receipts are kept as `ReceiptLine`s (text, alignment, bold) so tests can read what a customer
would see. Injected faults, drawn once per print job (at ESC @): paper near end, paper out (the
job is lost and the printer goes offline until `load_paper`), and no answer to a status request.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from terminals.devices import printer as proto
from terminals.devices.printer import (
    Alignment,
    Cut,
    Initialise,
    PaperStatus,
    PrintAndFeed,
    PrinterEvent,
    ReceiptLine,
    SetAlignment,
    SetBold,
    StatusKind,
    StatusRequest,
    Text,
    Unsupported,
)
from terminals.emulators.base import PoweredDevice
from terminals.emulators.faults import Fault, FaultSchedule
from terminals.transport.base import Transport

# Characters per line of a 58 mm roll at font A (an 80 mm roll has 48).
line_width_chars = 32


@dataclass
class Receipt:
    """One cut-off piece of paper."""

    lines: list[ReceiptLine] = field(default_factory=list)

    def render(self, width: int = line_width_chars) -> str:
        """The receipt as the customer sees it (Chinese characters are two columns wide)."""
        return "\n".join(_aligned(line, width) for line in self.lines)

    def text(self) -> str:
        """All printed text, one line per row, without alignment padding."""
        return "\n".join(line.text for line in self.lines)


class PrinterModel(PoweredDevice):
    """Paper, print head state, finished receipts."""

    def __init__(self, faults: FaultSchedule | None = None) -> None:
        super().__init__()
        self.faults = faults or FaultSchedule()
        self.paper = PaperStatus(near_end=False, out=False)
        self.receipts: list[Receipt] = []
        self.unsupported_commands = 0
        self._parser = proto.EscPosParser()
        self._alignment = Alignment.LEFT
        self._bold = False
        self._pending = Receipt()
        self._segments: list[str] = []
        self._line_bold = False

    def load_paper(self) -> None:
        """A technician puts in a new roll."""
        self.paper = PaperStatus(near_end=False, out=False)

    def receive(self, data: bytes) -> bytes:
        """Consume bytes from the host; return the status bytes to send back."""
        self._parser.receive_data(data)
        replies = bytearray()
        for event in self._parser.events():
            reply = self._apply(event)
            if reply is not None:
                replies.append(reply)
        return bytes(replies)

    def _apply(self, event: PrinterEvent) -> int | None:
        if isinstance(event, StatusRequest):
            return None if self.faults.check(Fault.PRINTER_SILENT) else self._status(event.kind)
        if isinstance(event, Initialise):
            self._start_job()
        elif self.paper.out:
            return None  # no paper: data is lost (the printer is offline)
        elif isinstance(event, Text):
            self._segments.append(event.text)
            self._line_bold = self._line_bold or self._bold
        elif isinstance(event, PrintAndFeed):
            self._print_line()
            self._pending.lines.extend(ReceiptLine("") for _ in range(event.lines - 1))
        elif isinstance(event, Cut):
            self._print_line(only_if_pending=True)
            self.receipts.append(self._pending)
            self._pending = Receipt()
        elif isinstance(event, SetAlignment):
            self._alignment = event.alignment
        elif isinstance(event, SetBold):
            self._bold = event.on
        elif isinstance(event, Unsupported):
            self.unsupported_commands += 1
        return None  # ChineseMode changes only how the parser decodes

    def _start_job(self) -> None:
        self._reset_format()
        if self.faults.check(Fault.PAPER_OUT):
            self.paper = PaperStatus(near_end=True, out=True)
        elif self.faults.check(Fault.PAPER_NEAR_END):
            self.paper = PaperStatus(near_end=True, out=self.paper.out)

    def _reset_format(self) -> None:
        self._alignment = Alignment.LEFT
        self._bold = False

    def _print_line(self, *, only_if_pending: bool = False) -> None:
        if only_if_pending and not self._segments:
            return
        # Bold if any of it was printed bold, or (for an empty line) if bold was on.
        line_bold = self._line_bold or (self._bold and not any(self._segments))
        line = ReceiptLine("".join(self._segments), self._alignment, line_bold)
        self._pending.lines.append(line)
        self._segments, self._line_bold = [], False

    def _status(self, kind: StatusKind) -> int:
        if kind is StatusKind.PAPER:
            return proto.encode_paper_status(self.paper)
        if kind is StatusKind.PRINTER:
            return proto.status_fixed_bits | (proto.offline_bit if self.paper.out else 0)
        if kind is StatusKind.OFFLINE_CAUSE:
            return proto.status_fixed_bits | (proto.paper_stop_bit if self.paper.out else 0)
        return proto.status_fixed_bits  # no cutter or unrecoverable errors modelled


class PrinterEmulator:
    """Serves a `PrinterModel` on a transport."""

    def __init__(self, model: PrinterModel) -> None:
        self.model = model

    async def serve(self, transport: Transport) -> None:
        self.model.attach_lines(transport.lines)
        while True:
            data = await transport.receive_some(proto.buffer_size_bytes_max)
            if not self.model.powered:
                continue
            replies = self.model.receive(data)
            if replies:
                await transport.send_all(replies)


def _aligned(line: ReceiptLine, width: int) -> str:
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line.text)
    room = max(width - used, 0)
    if line.alignment is Alignment.CENTRE:
        return " " * (room // 2) + line.text
    if line.alignment is Alignment.RIGHT:
        return " " * room + line.text
    return line.text
