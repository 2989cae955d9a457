"""The secure processor of the emulated EPP: keys, PIN entry, MAC. Sans-I/O.

Clear keys and PIN digits live only in this object, as they would only live inside a real EPP's
tamper-responsive module; nothing here logs them. Keys: the TMK is formed from clear components
(key ceremony) and checked against its KCV; TPK and TAK arrive as TR-31 version B key blocks
under the TMK. The PIN block is ISO 9564 format 0 under the TPK; the MAC is ISO 9797-1
algorithm 3 (retail MAC) under the TAK. Crypto comes from `switch.hsm.primitives`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switch.hsm.primitives import (
    KeyBlockError,
    PrimitiveError,
    encrypt_pin_block,
    kcv_tdes,
    retail_mac,
    tr31_unwrap,
    xor_bytes,
)
from terminals.devices import pinpad as proto
from terminals.devices.errors import RemoteProtocolError
from terminals.devices.pinpad import (
    DisplayKey,
    KeyEvent,
    KeySlot,
    PinEntryRequest,
    PinPadCommand,
    PinPadStatus,
    PinResult,
    Reply,
)

tdes_key_bytes = 16
components_max = 9
# Data MACed in one MAC command sequence (a host message is at most 4096 bytes).
mac_data_bytes_max = 8192
_USAGE_OF_SLOT = {KeySlot.TPK: "P0", KeySlot.TAK: "M3"}
_DIGITS = frozenset("0123456789")


@dataclass
class PinEntry:
    """A running PIN entry: the request and the digits typed so far (never leaves here)."""

    request: PinEntryRequest
    digits: list[str] = field(default_factory=list)


class PinPadModel:
    """Commands in, replies out; key presses in, key events and the PIN result out."""

    def __init__(self) -> None:
        self._components: dict[int, bytes] = {}
        self._tmk: bytes | None = None
        self._keys: dict[KeySlot, bytes] = {}
        self._mac_data = bytearray()
        self.entry: PinEntry | None = None

    @property
    def key_check_values(self) -> dict[str, str]:
        """KCVs of the loaded keys (safe to show; used by tests and the journal)."""
        kcvs = {slot.name: kcv_tdes(key) for slot, key in self._keys.items()}
        if self._tmk is not None:
            kcvs["TMK"] = kcv_tdes(self._tmk)
        return kcvs

    # -- commands --------------------------------------------------------------------------
    def handle(self, text: bytes) -> list[bytes]:
        """Frames to send for one command text: its reply, plus a PIN result on CANCEL."""
        try:
            command, data = proto.decode_command(text)
        except RemoteProtocolError:
            return [b"%s%s" % (bytes(text[:2]), PinPadStatus.UNKNOWN_COMMAND.value.encode())]
        if command is PinPadCommand.CANCEL_ENTRY:
            ended = self._end_entry(PinPadStatus.CANCELLED)
            return [Reply(command, PinPadStatus.OK).encode(), *ended]
        handler = {
            PinPadCommand.RESET: self._reset,
            PinPadCommand.STATUS: self._status,
            PinPadCommand.LOAD_COMPONENT: self._load_component,
            PinPadCommand.COMBINE_TMK: self._combine_tmk,
            PinPadCommand.IMPORT_KEY: self._import_key,
            PinPadCommand.PIN_ENTRY: self._start_entry,
            PinPadCommand.MAC: self._mac,
        }[command]
        status, reply_data = handler(data)
        return [Reply(command, status, reply_data).encode()]

    def _reset(self, _data: str) -> tuple[PinPadStatus, str]:
        self.entry = None
        self._mac_data.clear()
        return PinPadStatus.OK, ""

    def _status(self, _data: str) -> tuple[PinPadStatus, str]:
        flags = (self._tmk is not None, KeySlot.TPK in self._keys, KeySlot.TAK in self._keys)
        flags_text = "".join("1" if flag else "0" for flag in (*flags, self.entry is not None))
        return PinPadStatus.OK, flags_text

    def _load_component(self, data: str) -> tuple[PinPadStatus, str]:
        if len(data) != 33 or not data[0].isdigit() or not proto.is_hex(data[1:], 32):
            return PinPadStatus.BAD_PARAMETER, ""
        component = bytes.fromhex(data[1:])
        self._components[int(data[0])] = component
        return PinPadStatus.OK, kcv_tdes(component)

    def _combine_tmk(self, data: str) -> tuple[PinPadStatus, str]:
        """Data: component count (1 digit) + the TMK's expected KCV (6 hex)."""
        if len(data) != 7 or not data[0].isdigit() or not proto.is_hex(data[1:], 6):
            return PinPadStatus.BAD_PARAMETER, ""
        count, expected = int(data[0]), data[1:].upper()
        components = [self._components[i] for i in range(1, count + 1) if i in self._components]
        self._components.clear()  # components never outlive the ceremony, match or not
        if count < 2 or len(components) != count:
            return PinPadStatus.BAD_PARAMETER, ""
        tmk = bytes(tdes_key_bytes)
        for component in components:
            tmk = xor_bytes(tmk, component)
        if kcv_tdes(tmk) != expected:
            return PinPadStatus.KCV_MISMATCH, kcv_tdes(tmk)
        self._tmk, self._keys = tmk, {}  # a new TMK invalidates the working keys under the old
        return PinPadStatus.OK, kcv_tdes(tmk)

    def _import_key(self, data: str) -> tuple[PinPadStatus, str]:
        if self._tmk is None:
            return PinPadStatus.TMK_NOT_LOADED, ""
        try:
            slot = KeySlot(data[:1])
        except ValueError:
            return PinPadStatus.BAD_PARAMETER, ""
        try:
            header, key = tr31_unwrap(self._tmk, data[1:])
        except (KeyBlockError, PrimitiveError):
            return PinPadStatus.KEY_BLOCK_INVALID, ""
        if header.version != "B" or header.algorithm != "T" or len(key) != tdes_key_bytes:
            return PinPadStatus.KEY_BLOCK_INVALID, ""
        if header.key_usage != _USAGE_OF_SLOT[slot]:
            return PinPadStatus.WRONG_KEY_USAGE, ""
        self._keys[slot] = key
        return PinPadStatus.OK, kcv_tdes(key)

    def _start_entry(self, data: str) -> tuple[PinPadStatus, str]:
        if KeySlot.TPK not in self._keys:
            return PinPadStatus.KEY_NOT_LOADED, ""
        try:
            request = PinEntryRequest.decode(data)
        except RemoteProtocolError:
            return PinPadStatus.BAD_PARAMETER, ""
        if self.entry is not None:
            # A resent PE for the entry already running is acknowledged, not restarted.
            same = self.entry.request == request
            return (PinPadStatus.OK if same else PinPadStatus.BUSY), ""
        self.entry = PinEntry(request)
        return PinPadStatus.OK, ""

    def _mac(self, data: str) -> tuple[PinPadStatus, str]:
        tak = self._keys.get(KeySlot.TAK)
        if tak is None:
            return PinPadStatus.KEY_NOT_LOADED, ""
        chunk_hex = data[1:]
        if data[:1] not in ("0", "1") or len(chunk_hex) % 2 or not proto.is_hex(
            chunk_hex, len(chunk_hex)
        ):
            self._mac_data.clear()
            return PinPadStatus.BAD_PARAMETER, ""
        self._mac_data += bytes.fromhex(chunk_hex)
        if len(self._mac_data) > mac_data_bytes_max:
            self._mac_data.clear()
            return PinPadStatus.BAD_PARAMETER, ""
        if data[0] == "1":
            return PinPadStatus.OK, ""
        mac = retail_mac(tak, bytes(self._mac_data))
        self._mac_data.clear()
        return PinPadStatus.OK, mac.hex().upper()

    # -- the keypad ------------------------------------------------------------------------
    def press(self, key: str) -> list[bytes]:
        """The customer presses `key` ('0'-'9', 'clear', 'backspace', 'enter', 'cancel').

        Returns the frames the EPP sends: a key event, and the PIN result when entry ends.
        Keys pressed with no PIN entry running are ignored, as on a real EPP.
        """
        entry = self.entry
        if entry is None:
            return []
        if key in _DIGITS:
            if len(entry.digits) >= entry.request.length_max:
                return []
            entry.digits.append(key)
            return [KeyEvent(DisplayKey.DIGIT).encode()]
        if key == "clear":
            entry.digits.clear()
            return [KeyEvent(DisplayKey.CLEAR).encode()]
        if key == "backspace":
            if entry.digits:
                entry.digits.pop()
            return [KeyEvent(DisplayKey.BACKSPACE).encode()]
        if key == "cancel":
            return [KeyEvent(DisplayKey.CANCEL).encode(), *self._end_entry(PinPadStatus.CANCELLED)]
        if key == "enter" and len(entry.digits) >= entry.request.length_min:
            return [KeyEvent(DisplayKey.ENTER).encode(), *self._finish_entry(entry)]
        return []  # ENTER on too short a PIN, or an unknown key: ignored

    def expire_entry(self) -> list[bytes]:
        """The entry timeout passed with no completed PIN."""
        return self._end_entry(PinPadStatus.TIMEOUT)

    def _finish_entry(self, entry: PinEntry) -> list[bytes]:
        tpk = self._keys[KeySlot.TPK]
        block = encrypt_pin_block(tpk, "".join(entry.digits), entry.request.pan, 0)
        entry.digits.clear()
        self.entry = None
        return [PinResult(PinPadStatus.OK, block.hex().upper()).encode()]

    def _end_entry(self, status: PinPadStatus) -> list[bytes]:
        if self.entry is None:
            return []
        self.entry.digits.clear()
        self.entry = None
        return [PinResult(status).encode()]
