"""Serial lines over pseudo-terminal pairs, integrated with Trio without threads.

Choice (see docs/devices.md): pyserial opens and configures the port (raw 8N1, baud rate,
exclusive access) and owns its file descriptor; Trio does the I/O on that descriptor in
non-blocking mode with `trio.lowlevel.wait_readable` / `wait_writable`. No thread per port, and a
cancelled read leaves no stray reader behind. The emulator holds the pty master the same way.

A pty pair: `os.openpty()`; both ends are put in raw mode (`tty.setraw`) so bytes such as 0x03
or 0x11 are not eaten as ^C / XON by the line discipline.
"""

from __future__ import annotations

import os
import tty
from dataclasses import dataclass, field

import serial
import trio

from terminals.transport.base import ModemLines, TransportClosed

default_baud_rate = 9600
# Bytes asked of the kernel per read: more than any device frame, so one read usually suffices.
read_chunk_bytes_max = 4096


class FdTransport:
    """A non-blocking file descriptor (pty master or serial port) as a `Transport`."""

    def __init__(self, fd: int, lines: ModemLines) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._closed = False
        self.lines = lines

    async def send_all(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(data)
        while view:
            self._check_open()
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._fd)
                continue
            except OSError as error:
                raise TransportClosed(f"serial write failed: {error}") from error
            view = view[written:]
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def receive_some(self, max_bytes: int) -> bytes:
        # A serial port configured with VMIN=0 returns b"" when idle instead of EAGAIN, so b""
        # only means "hung up" right after the kernel said the fd is readable (as pyserial does).
        await trio.lowlevel.checkpoint_if_cancelled()
        woken = False
        while True:
            self._check_open()
            try:
                data = os.read(self._fd, min(max_bytes, read_chunk_bytes_max))
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._fd)
                continue
            except OSError as error:
                # EIO on a pty master once the slave is closed (and vice versa).
                raise TransportClosed(f"serial line hung up: {error}") from error
            if data:
                # Bytes read must be returned: never raise Cancelled after consuming them.
                await trio.lowlevel.cancel_shielded_checkpoint()
                return data
            if woken:
                raise TransportClosed("serial line hung up")
            await trio.lowlevel.wait_readable(self._fd)
            woken = True

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self._fd)
            self._close_fd()
        await trio.lowlevel.checkpoint()

    def _close_fd(self) -> None:
        os.close(self._fd)

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed("transport is closed")


class SerialTransport(FdTransport):
    """The driver's end: a serial port opened by path with pyserial."""

    def __init__(self, port: serial.Serial, lines: ModemLines) -> None:
        self._port = port
        super().__init__(port.fileno(), lines)

    @classmethod
    def open(
        cls, path: str, *, lines: ModemLines, baud_rate: int = default_baud_rate
    ) -> SerialTransport:
        """Open `path` as 8N1 at `baud_rate`; raises TransportClosed if it cannot be opened."""
        try:
            port = serial.Serial(path, baud_rate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError) as error:
            raise TransportClosed(f"cannot open serial port {path}: {error}") from error
        return cls(port, lines)

    def _close_fd(self) -> None:
        self._port.close()


@dataclass
class PtyPair:
    """A pseudo-terminal: the emulator owns `master_fd`, the driver opens `slave_path`."""

    master_fd: int
    slave_fd: int
    slave_path: str
    lines: ModemLines = field(default_factory=ModemLines)

    def device_transport(self) -> FdTransport:
        """The emulator's end (the pty master)."""
        return FdTransport(self.master_fd, self.lines)

    def open_driver_transport(self, *, baud_rate: int = default_baud_rate) -> SerialTransport:
        """The driver's end: the slave path opened with pyserial, as a real port would be."""
        return SerialTransport.open(self.slave_path, lines=self.lines, baud_rate=baud_rate)

    def close_slave_keeper(self) -> None:
        """Close our own handle on the slave once the driver has opened the path itself."""
        if self.slave_fd >= 0:
            os.close(self.slave_fd)
            self.slave_fd = -1


def open_pty_pair() -> PtyPair:
    """A new raw-mode pty pair (the slave fd stays open so the path stays valid until the
    driver opens it; call `close_slave_keeper` afterwards)."""
    master_fd, slave_fd = os.openpty()
    tty.setraw(master_fd)
    tty.setraw(slave_fd)
    return PtyPair(master_fd, slave_fd, os.ttyname(slave_fd))
