"""A small test issuer: a Trio TCP server speaking the host dialect as a card network would.

It holds the clear zone keys (it is the other end of the zone), answers 0800 sign-on / echo /
sign-off, approves or declines 0200s by simple rules (PIN, balance, per-PAN decline codes),
acknowledges 0220/0420 advices (optionally ignoring the first N to exercise store-and-forward),
and keeps every message it received so tests can look at the wire.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import trio

from switch.hsm.primitives.mac import retail_mac
from switch.hsm.primitives.pin_blocks import decrypt_pin_block
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import Message, decode_message, encode_message, mac_input_of, mac_of
from switch.protocol.responses import response_fields, response_mti

ZPK_HEX = "0123456789ABCDEFFEDCBA9876543210"
ZAK_HEX = "1111111111111111FEDCBA9876543210"


@dataclasses.dataclass
class IssuerRules:
    pin: str = "1234"
    balance_minor: int = 1_000_000
    decline_pans: dict[str, str] = dataclasses.field(default_factory=dict)
    answer_delay_s: float = 0.0
    ignore_first_advices: int = 0  # advices received and not answered (repeats expected)
    sign_on_code: str = "00"


class TestIssuer:
    __test__ = False  # not a pytest class

    def __init__(self, rules: IssuerRules | None = None, *, zak_hex: str | None = None) -> None:
        self.rules = rules or IssuerRules()
        self.zpk = bytes.fromhex(ZPK_HEX)
        self.zak = None if zak_hex is None else bytes.fromhex(zak_hex)
        self.received: list[Message] = []
        self.raw_received: list[bytes] = []
        self.pins_seen: list[str] = []
        self.advices_ignored = 0
        self.connections = 0
        self.mac_failures = 0
        self._streams: list[trio.SocketStream] = []
        self.port = 0

    def messages(self, mti_prefix: str) -> list[Message]:
        return [m for m in self.received if m.mti.startswith(mti_prefix)]

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self.port)
        await trio.serve_listeners(self._connection, listeners)

    async def drop_connections(self) -> None:
        for stream in self._streams:
            await trio.aclose_forcefully(stream)
        self._streams.clear()

    async def send_network(self, code: str) -> None:
        """The issuer's own 0800 (e.g. 002 sign-off) on every open connection."""
        payload = encode_message("0800", {"7": "0101000000", "11": "900001",
                                          "41": "ISSUER01", "70": code})
        for stream in self._streams:
            await stream.send_all(encode_frame(payload))

    async def _connection(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        self._streams.append(stream)
        decoder = FrameDecoder()
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not None:
                    answer = await self._answer(frame)
                    if answer is not None:
                        await stream.send_all(encode_frame(answer))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async def _answer(self, frame: bytes) -> bytes | None:
        message = decode_message(frame)
        self.received.append(message)
        self.raw_received.append(frame)
        if message.mti.endswith("10"):
            return None  # an answer to our own 0800
        if message.mti == "0800":
            code = self.rules.sign_on_code if message.fields.get("70") == "001" else "00"
            return encode_message("0810", response_fields(message, code))
        if self.zak is not None and not self._mac_ok(frame):
            self.mac_failures += 1
            return self._encode(message, "63")
        if message.mti[:3] in ("022", "042"):
            if self.advices_ignored < self.rules.ignore_first_advices:
                self.advices_ignored += 1
                return None
            return self._encode(message, "00", {"15": "0101"})
        if self.rules.answer_delay_s:
            await trio.sleep(self.rules.answer_delay_s)
        code, extra = self._decide(message)
        return self._encode(message, code, extra)

    def _decide(self, message: Message) -> tuple[str, dict[str, str]]:
        pan = message.fields["2"]
        if pan in self.rules.decline_pans:
            return self.rules.decline_pans[pan], {}
        pin_block = message.fields.get("52")
        if pin_block is not None:
            pin = decrypt_pin_block(self.zpk, bytes.fromhex(pin_block), pan, 0)
            self.pins_seen.append(pin)
            if pin != self.rules.pin:
                return "55", {}
        if int(message.fields["4"]) > self.rules.balance_minor:
            return "51", {}
        return "00", {"38": "AB1234", "15": "0101"}

    def _mac_ok(self, frame: bytes) -> bool:
        assert self.zak is not None
        try:
            return retail_mac(self.zak, mac_input_of(frame)).hex().upper() == mac_of(frame)
        except Exception:
            return False

    def _encode(self, message: Message, code: str, extra: Mapping[str, str] | None = None) -> bytes:
        fields = response_fields(message, code, extra)
        mti = response_mti(message.mti)
        if self.zak is None or code in ("30", "58"):
            return encode_message(mti, fields)
        zak = self.zak
        return encode_message(mti, fields, mac=lambda data: retail_mac(zak, data).hex().upper())
