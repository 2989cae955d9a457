"""Per-terminal request builders: full spec messages from a precomputed template.

Each terminal keeps the fields that never change (41, 42, 43, 32, 35, 22, 49,
48/LG) as wire bytes once; a request copies them, adds the fields of the moment
(3, 4, 7, 11, 12, 13, 37, 52, 102/103), encodes and MACs. Nothing is cached
across requests that a real terminal would compute per transaction: the PIN
block is encrypted and the MAC computed every time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from loadtest.population import Terminal, card_expiry, currency_numeric
from loadtest.terminal_crypto import TerminalCrypto, pan_field_format0, pin_field_format0
from loadtest.wire import encode_message, encode_with_mac

acquirer_id = b"4321"  # field 32 of every load-test terminal
merchant_type_atm = b"6011"
pos_entry_magstripe_pin = b"021"  # spec 2: 02 magnetic stripe, 1 = can accept PINs


class Kind(StrEnum):
    """Transaction types of the mix (spec 4) plus the advices that follow them."""

    WITHDRAWAL = "withdrawal"
    BALANCE = "balance"
    TRANSFER = "transfer"
    MINI_STATEMENT = "mini_statement"
    DEPOSIT = "deposit"
    COMPLETION = "completion"
    REVERSAL = "reversal"


PROCESSING_CODES: dict[Kind, bytes] = {
    Kind.WITHDRAWAL: b"010000",
    Kind.DEPOSIT: b"210000",
    Kind.BALANCE: b"310000",
    Kind.MINI_STATEMENT: b"380000",
    Kind.TRANSFER: b"400000",
}


@dataclass(frozen=True, slots=True)
class Original:
    """What an advice (0220/0420) must repeat of its 0200 (spec 5.3/5.4)."""

    stan: bytes
    transmission_time: bytes
    processing_code: bytes
    amount: bytes
    rrn: bytes


class _Clock:
    """Fields 7 (UTC MMDDhhmmss), 12 and 13 (local hhmmss / MMDD), recomputed once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._fields: tuple[bytes, bytes, bytes] = (b"", b"", b"")

    def fields(self) -> tuple[bytes, bytes, bytes]:
        second = int(time.time())
        if second != self._second:
            utc = time.gmtime(second)
            local = time.localtime(second)
            self._fields = (
                time.strftime("%m%d%H%M%S", utc).encode(),
                time.strftime("%H%M%S", local).encode(),
                time.strftime("%m%d", local).encode(),
            )
            self._second = second
        return self._fields


_clock = _Clock()


class MessageFactory:
    """Builds one terminal's requests (wire bytes, without the length prefix)."""

    def __init__(self, terminal: Terminal, crypto: TerminalCrypto | None = None) -> None:
        self.terminal = terminal
        self.crypto = crypto
        self._terminal_id = terminal.terminal_id.encode("ascii")
        self._clear_pin_block = pin_field_format0(terminal.pin) ^ pan_field_format0(terminal.pan)
        self._rrn_counter = 0
        language = b"zh" if terminal.index % 2 else b"en"
        self._base: dict[int, bytes] = {
            22: pos_entry_magstripe_pin,
            18: merchant_type_atm,
            32: acquirer_id,
            35: f"{terminal.pan}={card_expiry}1010000000".encode("ascii"),
            41: self._terminal_id,
            42: b"LOADTEST%07d" % terminal.index,
            43: b"%-40s" % (b"ATM %s SHANGHAI CN" % self._terminal_id),
            48: b"LG002" + language,
            49: currency_numeric.encode("ascii"),
        }
        self._advice_base: dict[int, bytes] = {
            2: terminal.pan.encode("ascii"),
            14: card_expiry.encode("ascii"),
            32: acquirer_id,
            41: self._terminal_id,
            49: currency_numeric.encode("ascii"),
        }
        self._account = terminal.account_id.encode("ascii")
        self._payee = terminal.payee_account_id.encode("ascii")

    def set_crypto(self, crypto: TerminalCrypto) -> None:
        """Keys changed (a key exchange): later messages use the new TPK/TAK."""
        self.crypto = crypto

    def _require_crypto(self) -> TerminalCrypto:
        if self.crypto is None:
            raise RuntimeError(f"terminal {self.terminal.terminal_id} has no working keys yet")
        return self.crypto

    def _next_rrn(self) -> bytes:
        self._rrn_counter = (self._rrn_counter + 1) % 1_000_000
        return b"%06d%06d" % (self.terminal.index % 1_000_000, self._rrn_counter)

    def financial(self, kind: Kind, stan: bytes, amount_minor: int) -> tuple[bytes, Original]:
        """A 0200 of ``kind`` with PIN block and MAC (spec 5.2)."""
        crypto = self._require_crypto()
        transmission, local_time, local_date = _clock.fields()
        fields = self._base.copy()
        processing_code = PROCESSING_CODES[kind]
        amount = b"%012d" % amount_minor
        rrn = self._next_rrn()
        fields[3] = processing_code
        fields[4] = amount
        fields[7] = transmission
        fields[11] = stan
        fields[12] = local_time
        fields[13] = local_date
        fields[37] = rrn
        fields[52] = crypto.pin_block(self._clear_pin_block)
        if kind is Kind.TRANSFER:
            fields[102] = self._account
            fields[103] = self._payee
        raw = encode_with_mac(b"0200", fields, crypto.mac)
        return raw, Original(stan, transmission, processing_code, amount, rrn)

    def _original_data(self, original: Original) -> bytes:
        """Field 90: MTI, STAN, field 7, acquirer id (11, zero-filled), 11 zeros."""
        return b"0200" + original.stan + original.transmission_time + (
            acquirer_id.rjust(11, b"0") + b"0" * 11
        )

    def advice(
        self, kind: Kind, original: Original, stan: bytes, *, reason: bytes = b"17"
    ) -> bytes:
        """A 0220 completion or 0420 reversal of ``original`` (spec 5.3/5.4), MAC'd."""
        crypto = self._require_crypto()
        fields = self._advice_base.copy()
        fields[3] = original.processing_code
        fields[4] = original.amount
        fields[7] = _clock.fields()[0]
        fields[11] = stan
        fields[37] = original.rrn
        fields[90] = self._original_data(original)
        if kind is Kind.REVERSAL:
            fields[39] = reason
            return encode_with_mac(b"0420", fields, crypto.mac)
        return encode_with_mac(b"0220", fields, crypto.mac)

    def network(self, code: bytes, stan: bytes) -> bytes:
        """An 0800 (spec 5.1: 7, 11, 41, 70; no MAC)."""
        fields = {7: _clock.fields()[0], 11: stan, 41: self._terminal_id, 70: code}
        return encode_message(b"0800", fields)
