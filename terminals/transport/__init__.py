"""Byte transports between a driver and a device: real serial ports (pty pairs in tests and the
simulator) and an in-memory pair for fast unit tests. See docs/devices.md, "Serial transport"."""

from terminals.transport.base import ModemLines, Transport, TransportClosed
from terminals.transport.memory import NoisyTransport, memory_transport_pair
from terminals.transport.pty import FdTransport, PtyPair, SerialTransport, open_pty_pair

__all__ = [
    "FdTransport",
    "ModemLines",
    "NoisyTransport",
    "PtyPair",
    "SerialTransport",
    "Transport",
    "TransportClosed",
    "memory_transport_pair",
    "open_pty_pair",
]
