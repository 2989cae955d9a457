"""The outbound link over real TCP against the test issuer: sign-on, echo when idle, STAN
matching with answers out of order, the in-flight bound, refused sign-on, reconnect backoff.

The timing tests run on Trio's MockClock (``autojump_clock``): the issuer is a task of the same
Trio run over loopback, so the clock only jumps when every task waits on a timer
(docs/testing.md)."""

from __future__ import annotations

from functools import partial

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from switch.networks.base import NetworkSignedOff, NetworkStatus, NetworkUnavailable
from switch.networks.link import OutboundLink
from switch.networks.link_settings import LinkSettings, next_backoff
from switch.protocol.framing import FrameDecoder, encode_frame
from switch.protocol.message import decode_message, encode_message
from switch.protocol.responses import response_fields
from tests.networks.harness import free_port, wait_until
from tests.networks.issuer import IssuerRules, TestIssuer


def _settings(port: int, **kw: float) -> LinkSettings:
    return LinkSettings(host="127.0.0.1", port=port, reconnect_backoff_min_s=0.02,
                        reconnect_backoff_max_s=0.1, **kw)


async def test_signs_on_and_echoes_when_idle(autojump_clock: MockClock) -> None:
    issuer = TestIssuer()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(issuer.serve)
        link = OutboundLink(_settings(port, echo_idle_s=0.1))
        await nursery.start(link.run)
        assert link.status is NetworkStatus.SIGNED_ON
        signed_on_at = trio.current_time()
        await wait_until(lambda: len(issuer.messages("0800")) >= 3)
        # On the mock clock: two echoes need two idle periods of 0.1 s, not less.
        assert trio.current_time() - signed_on_at >= 2 * 0.1
        codes = [m.fields["70"] for m in issuer.messages("0800")]
        assert codes[0] == "001" and set(codes[1:]) == {"301"}
        assert issuer.messages("0800")[0].fields["41"] == "ATMSWTCH"
        nursery.cancel_scope.cancel()


async def test_sign_on_refused_means_signed_off() -> None:
    issuer = TestIssuer(IssuerRules(sign_on_code="91"))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(issuer.serve)
        link = OutboundLink(_settings(port))
        await nursery.start(link.run)
        assert link.status is NetworkStatus.SIGNED_OFF
        with pytest.raises(NetworkSignedOff):
            await link.request("0200", {"41": "ATM1    "}, deadline=trio.current_time() + 1)
        nursery.cancel_scope.cancel()


async def test_down_link_refuses_at_once_and_keeps_retrying(autojump_clock: MockClock) -> None:
    port = free_port()
    async with trio.open_nursery() as nursery:
        link = OutboundLink(_settings(port))
        await nursery.start(link.run)
        assert link.status is NetworkStatus.LINK_DOWN
        with pytest.raises(NetworkUnavailable) as info:
            await link.request("0200", {"41": "ATM1    "}, deadline=trio.current_time() + 1)
        assert not info.value.sent
        issuer = TestIssuer()
        issuer.port = port
        await trio.sleep(1.0)  # mock clock: several failed attempts, backoff up at its cap
        await nursery.start(issuer.serve)
        up_at = trio.current_time()
        await wait_until(lambda: link.status is NetworkStatus.SIGNED_ON)
        assert trio.current_time() - up_at <= 0.1 + 0.01  # the next try within the 0.1 s cap
        nursery.cancel_scope.cancel()


class ReversedOrderPeer:
    """Answers 0800s at once; holds 0200s until released, then answers newest first."""

    def __init__(self) -> None:
        self.release = trio.Event()

    async def __call__(self, stream: trio.SocketStream) -> None:
        decoder = FrameDecoder()
        held = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._answer_when_released, stream, held)
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    nursery.cancel_scope.cancel()
                    return
                decoder.receive_data(data)
                while (frame := decoder.next_frame()) is not None:
                    message = decode_message(frame)
                    if message.mti == "0800":
                        await stream.send_all(encode_frame(
                            encode_message("0810", response_fields(message, "00"))))
                    else:
                        held.append(message)

    async def _answer_when_released(self, stream: trio.SocketStream, held: list) -> None:
        await self.release.wait()
        for waiting in reversed(held):
            answer = response_fields(waiting, "00", {"38": waiting.fields["11"]})
            await stream.send_all(encode_frame(encode_message("0210", answer)))


async def test_answers_matched_by_stan_in_any_order_and_inflight_is_bounded() -> None:
    peer = ReversedOrderPeer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, peer, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        link = OutboundLink(_settings(port, inflight_max=2))
        await nursery.start(link.run)
        answers: dict[str, str] = {}

        async def ask(stan: str) -> None:
            fields = {"3": "310000", "4": "0" * 12, "11": stan, "41": "ATM1    "}
            message, _ = await link.request("0200", fields, deadline=trio.current_time() + 2)
            answers[stan] = message.fields["38"]

        async with trio.open_nursery() as requests:
            requests.start_soon(ask, "000101")
            requests.start_soon(ask, "000102")
            await wait_until(lambda: link.inflight == 2)
            with pytest.raises(NetworkUnavailable, match="in flight"):
                await ask("000103")
            peer.release.set()
        assert answers == {"000101": "000101", "000102": "000102"}
        nursery.cancel_scope.cancel()


async def test_no_answer_before_the_deadline_is_unavailable_and_sent(
    autojump_clock: MockClock,
) -> None:
    issuer = TestIssuer(IssuerRules(answer_delay_s=1.0))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(issuer.serve)
        link = OutboundLink(_settings(port))
        await nursery.start(link.run)
        fields = {"2": "4999990000000017", "3": "310000", "4": "0" * 12, "41": "ATM1    "}
        started = trio.current_time()
        with pytest.raises(NetworkUnavailable) as info:
            await link.request("0200", fields, deadline=started + 0.2)
        assert info.value.sent and link.inflight == 0
        assert trio.current_time() - started == pytest.approx(0.2)  # at the deadline, not later
        nursery.cancel_scope.cancel()


@settings(max_examples=100)
@given(st.floats(min_value=0.001, max_value=1000), st.floats(min_value=0.01, max_value=1),
       st.floats(min_value=1, max_value=100))
def test_backoff_is_bounded(current: float, low: float, high: float) -> None:
    link_settings = LinkSettings(host="h", port=1, reconnect_backoff_min_s=low,
                                 reconnect_backoff_max_s=high)
    value = next_backoff(current, link_settings)
    assert low <= value <= high
    assert value == high or value >= min(current * 2, high)
