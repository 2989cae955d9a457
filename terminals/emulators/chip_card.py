"""An emulated EMV contact chip card: one debit application answering the five commands an ATM
sends (SELECT, GET PROCESSING OPTIONS, READ RECORD, first and second GENERATE AC).

Why an emulator of the card and not only of the reader: the terminal must carry the card's
cryptogram to the host and the host's ARPC back to the card, and a test can only show the card
accepting or refusing that ARPC if a card computes and checks it. The keys and cryptograms are
those of spec section 11 (:mod:`terminals.emulators.chip_crypto`).

The card's choices (documented in docs/simulator.md):
- AID A000000333010101 (UnionPay debit), empty PDOL, AIP 1800 (online-only style), one record
  (SFI 1, record 1) holding 57, 5A, 5F24, 5F34, 5F20, 8C (CDOL1), 8D (CDOL2).
- CDOL1 = 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37: the first eight items of spec 11's ARQC data, so
  D = CDOL1 data || AIP || ATC || IAD.
- The ATC rises by one at each GET PROCESSING OPTIONS (a new transaction, EMV Book 3 10.1),
  so every ARQC carries a fresh ATC; it never wraps (6985 at FFFF).
- CDOL2 = 91 (issuer authentication data: ARPC || ARC) 8A (ARC) 95 9F37. The second GENERATE AC
  returns a TC only when a TC was asked for, the ARPC in 91 verifies under the session key of the
  first GENERATE AC, and the ARC in 91 is ``00``; otherwise an AAC.
- TC and AAC are computed like the ARQC over CDOL1 data || CDOL2 data || AIP || ATC || IAD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from terminals.emulators import chip_crypto
from terminals.emv import tlv
from terminals.emv.apdu import (
    SW_CLA_NOT_SUPPORTED,
    SW_CONDITIONS_NOT_SATISFIED,
    SW_FILE_NOT_FOUND,
    SW_INS_NOT_SUPPORTED,
    SW_OK,
    SW_RECORD_NOT_FOUND,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    ApduError,
    CommandApdu,
    CryptogramType,
    Ins,
    ResponseApdu,
)

UNIONPAY_DEBIT_AID: Final = bytes.fromhex("A000000333010101")
# TS=3B direct convention, T0=60 (TB1 and TC1 follow, no historical bytes), TB1=00, TC1=00:
# the basic ATR of EMV Book 1 8.3 for T=0.
ATR: Final = bytes.fromhex("3B600000")
AIP: Final = bytes.fromhex("1800")  # cardholder verification + terminal risk management
AFL: Final = bytes.fromhex("08010100")  # SFI 1, records 1..1, none for offline authentication
# Issuer application data, Visa CVN 10 layout (length, DKI, CVN, CVR): only carried, never parsed.
IAD: Final = bytes.fromhex("06010A03A00000")
CDOL1: Final = bytes.fromhex("9F0206" "9F0306" "9F1A02" "9505" "5F2A02" "9A03" "9C01" "9F3704")
CDOL2: Final = bytes.fromhex("910A" "8A02" "9505" "9F3704")
cdol1_bytes: Final = 29
cdol2_bytes: Final = 21
atc_max: Final = 0xFFFF
ARC_APPROVED: Final = b"00"


class CardStage(Enum):
    """Where the card is in one transaction (a power-on or SELECT starts over)."""

    IDLE = "idle"
    SELECTED = "selected"
    READY = "ready"  # GET PROCESSING OPTIONS done: the ATC of this transaction is set
    ONLINE = "online"  # ARQC given, waiting for the second GENERATE AC
    DONE = "done"


@dataclass(frozen=True, slots=True)
class CardDecision:
    """What the card answered to one GENERATE AC (kept for tests and the scenario results)."""

    atc: int
    requested: CryptogramType
    returned: CryptogramType
    arpc_verified: bool | None = None


@dataclass
class ChipCard:
    """One card's chip: personalisation data, its ICC master key for ACs and its ATC."""

    pan: str
    expiry: str  # YYMM
    psn: str  # 2 digits
    mk_ac: bytes = field(repr=False)
    atc: int = 0
    service_code: str = "220"  # 2xx: a chip card (ISO/IEC 7813), international, online PIN
    name: str = "CARDHOLDER/TEST"
    decisions: list[CardDecision] = field(default_factory=list)
    _stage: CardStage = CardStage.IDLE
    _cdol1_data: bytes = b""
    _arqc: bytes = b""

    @classmethod
    def personalise(cls, imk_ac_hex: str, pan: str, expiry: str, psn: str, *,
                    atc: int = 0, service_code: str = "220") -> ChipCard:
        """What the issuer's personalisation bureau does: derive MK-AC (option A) from IMK-AC."""
        if len(psn) != 2 or not psn.isdigit():
            raise ValueError("the PSN is 2 digits")
        if not 0 <= atc < atc_max:
            raise ValueError("the ATC is 0..65534")
        mk_ac = chip_crypto.derive_mk_ac(bytes.fromhex(imk_ac_hex), pan, psn)
        return cls(pan, expiry, psn, mk_ac, atc, service_code)

    @property
    def track2(self) -> str:
        """The magnetic stripe of the same card (what a stripe read returns)."""
        return f"{self.pan}={self.expiry}{self.service_code}0000000"

    @property
    def track2_equivalent(self) -> bytes:
        """Tag 57: PAN D YYMM service code discretionary, BCD, padded with F."""
        digits = f"{self.pan}D{self.expiry}{self.service_code}0000000"
        return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))

    # -- the reader's side ---------------------------------------------------------------
    def reset(self) -> bytes:
        """Cold reset: the card forgets any transaction in progress and answers its ATR."""
        self._stage, self._cdol1_data, self._arqc = CardStage.IDLE, b"", b""
        return ATR

    def exchange(self, raw: bytes) -> bytes:
        """One command APDU in, the response APDU out."""
        try:
            command = CommandApdu.decode(raw)
        except ApduError:
            return ResponseApdu(b"", SW_WRONG_LENGTH).encode()
        return self._dispatch(command).encode()

    def _dispatch(self, command: CommandApdu) -> ResponseApdu:
        handlers: dict[tuple[int, int], Callable[[CommandApdu], ResponseApdu]] = {
            (0x00, Ins.SELECT): self._select,
            (0x80, Ins.GET_PROCESSING_OPTIONS): self._get_processing_options,
            (0x00, Ins.READ_RECORD): self._read_record,
            (0x80, Ins.GENERATE_AC): self._generate_ac,
        }
        handler = handlers.get((command.cla, command.ins))
        if handler is None:
            known = {ins for _cla, ins in handlers}
            sw = SW_CLA_NOT_SUPPORTED if command.ins in known else SW_INS_NOT_SUPPORTED
            return ResponseApdu(b"", sw)
        return handler(command)

    def _select(self, command: CommandApdu) -> ResponseApdu:
        if command.p1 != 0x04 or command.p2 != 0x00:
            return ResponseApdu(b"", SW_WRONG_P1P2)
        if not command.data or not UNIONPAY_DEBIT_AID.startswith(command.data):
            return ResponseApdu(b"", SW_FILE_NOT_FOUND)
        self._stage, self._cdol1_data, self._arqc = CardStage.SELECTED, b"", b""
        proprietary = tlv.encode_one("A5", tlv.encode_one("50", b"UNIONPAY DEBIT")
                                     + tlv.encode_one("87", b"\x01"))
        fci = tlv.encode_one("6F", tlv.encode_one("84", UNIONPAY_DEBIT_AID) + proprietary)
        return ResponseApdu(fci, SW_OK)

    def _get_processing_options(self, command: CommandApdu) -> ResponseApdu:
        if self._stage is not CardStage.SELECTED:
            return ResponseApdu(b"", SW_CONDITIONS_NOT_SATISFIED)
        if command.data != b"\x83\x00":  # our PDOL is empty
            return ResponseApdu(b"", SW_WRONG_LENGTH)
        if self.atc >= atc_max:
            return ResponseApdu(b"", SW_CONDITIONS_NOT_SATISFIED)  # the card is used up
        self.atc += 1
        self._stage = CardStage.READY
        body = tlv.encode_one("82", AIP) + tlv.encode_one("94", AFL)
        return ResponseApdu(tlv.encode_one("77", body), SW_OK)

    def _read_record(self, command: CommandApdu) -> ResponseApdu:
        if (command.p2 & 0x07) != 0x04:
            return ResponseApdu(b"", SW_WRONG_P1P2)
        if (command.p2 >> 3, command.p1) != (1, 1):
            return ResponseApdu(b"", SW_RECORD_NOT_FOUND)
        pan = self.pan + ("F" if len(self.pan) % 2 else "")
        record = tlv.encode([
            ("57", self.track2_equivalent),
            ("5A", bytes.fromhex(pan)),
            ("5F24", bytes.fromhex(self.expiry + "31")),  # YYMMDD, last day of the month
            ("5F34", bytes.fromhex(self.psn)),
            ("5F20", self.name.encode("ascii")),
            ("8C", CDOL1),
            ("8D", CDOL2),
        ])
        return ResponseApdu(tlv.encode_one("70", record), SW_OK)

    def _generate_ac(self, command: CommandApdu) -> ResponseApdu:
        try:
            requested = CryptogramType(command.p1 & 0xC0)
        except ValueError:
            return ResponseApdu(b"", SW_WRONG_P1P2)
        if self._stage is CardStage.READY:
            return self._first_ac(requested, command.data)
        if self._stage is CardStage.ONLINE:
            return self._second_ac(requested, command.data)
        return ResponseApdu(b"", SW_CONDITIONS_NOT_SATISFIED)

    def _first_ac(self, requested: CryptogramType, data: bytes) -> ResponseApdu:
        """An ATM card always goes online: an ARQC unless the terminal asks for an AAC."""
        if len(data) != cdol1_bytes:
            return ResponseApdu(b"", SW_WRONG_LENGTH)
        returned = CryptogramType.AAC if requested is CryptogramType.AAC else CryptogramType.ARQC
        self._cdol1_data = data
        cryptogram = self._cryptogram(data)
        self._stage = CardStage.ONLINE if returned is CryptogramType.ARQC else CardStage.DONE
        if returned is CryptogramType.ARQC:
            self._arqc = cryptogram
        self.decisions.append(CardDecision(self.atc, requested, returned))
        return self._ac_response(returned, cryptogram)

    def _second_ac(self, requested: CryptogramType, data: bytes) -> ResponseApdu:
        if len(data) != cdol2_bytes or requested is CryptogramType.ARQC:
            return ResponseApdu(b"", SW_WRONG_LENGTH if len(data) != cdol2_bytes
                                else SW_WRONG_P1P2)
        issuer_auth, arc = data[:10], data[8:10]
        verified = chip_crypto.arpc_matches(self._session_key(), self._arqc, arc,
                                            issuer_auth[:8])
        approved = requested is CryptogramType.TC and verified and arc == ARC_APPROVED
        returned = CryptogramType.TC if approved else CryptogramType.AAC
        self._stage = CardStage.DONE
        self.decisions.append(CardDecision(self.atc, requested, returned, verified))
        return self._ac_response(returned, self._cryptogram(self._cdol1_data + data))

    def _session_key(self) -> bytes:
        return chip_crypto.derive_sk_ac(self.mk_ac, self.atc)

    def _cryptogram(self, terminal_data: bytes) -> bytes:
        data = terminal_data + AIP + self.atc.to_bytes(2, "big") + IAD
        return chip_crypto.application_cryptogram(self._session_key(), data)

    def _ac_response(self, kind: CryptogramType, cryptogram: bytes) -> ResponseApdu:
        body = tlv.encode([
            ("9F27", bytes([int(kind)])),
            ("9F36", self.atc.to_bytes(2, "big")),
            ("9F26", cryptogram),
            ("9F10", IAD),
        ])
        return ResponseApdu(tlv.encode_one("77", body), SW_OK)
