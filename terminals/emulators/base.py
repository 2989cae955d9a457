"""What every emulator shares: power (mirrored on DSR/CTS) and a run loop over a transport."""

from __future__ import annotations

from terminals.transport.base import ModemLines


class PoweredDevice:
    """A device that can be switched off: off, it raises no DSR and ignores the line."""

    def __init__(self) -> None:
        self.powered = True
        self._lines: ModemLines | None = None

    def attach_lines(self, lines: ModemLines) -> None:
        """Drive DSR/CTS of this link from now on (called when the emulator starts serving)."""
        self._lines = lines
        lines.set(dsr=self.powered, cts=self.powered)

    def power_off(self) -> None:
        """Cut power: DSR drops, commands go unanswered."""
        self._set_power(False)

    def power_on(self) -> None:
        self._set_power(True)

    def is_powered(self) -> bool:
        return self.powered

    def _set_power(self, powered: bool) -> None:
        self.powered = powered
        if self._lines is not None:
            self._lines.set(dsr=powered, cts=powered)
