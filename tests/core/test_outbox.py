"""The coalescing writer: responses queued during a write leave together; failures wake everyone."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from switch.outbox import Outbox, WriteFailed


class GatedStream(trio.abc.SendStream):
    """Records writes; the first write blocks until ``gate`` is set (a slow peer)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.gate = trio.Event()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))
        await self.gate.wait()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_frames_queued_during_a_write_go_out_in_one_write() -> None:
    stream = GatedStream()
    outbox = Outbox(stream)
    done: list[bytes] = []

    async def send(frame: bytes) -> None:
        await outbox.send(frame)
        done.append(frame)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send, b"1")
        await trio.testing.wait_all_tasks_blocked()
        for frame in (b"2", b"3", b"4", b"5"):
            nursery.start_soon(send, frame)
        await trio.testing.wait_all_tasks_blocked()
        assert done == []  # nobody returns before its frame is written
        stream.gate.set()
    assert stream.writes[0] == b"1"
    assert len(stream.writes) == 2 and sorted(stream.writes[1]) == sorted(b"2345")  # one write
    assert sorted(done) == [b"1", b"2", b"3", b"4", b"5"]


async def test_a_failed_write_fails_every_waiter() -> None:
    send, receive = trio.testing.memory_stream_pair()
    await receive.aclose()
    await send.aclose()
    outbox = Outbox(send)
    with pytest.raises(WriteFailed):
        await outbox.send(b"x")
    with pytest.raises(WriteFailed):
        await outbox.send(b"y")


async def test_write_timeout_fails_the_waiters_too(autojump_clock: trio.testing.MockClock) -> None:
    stream = GatedStream()  # the gate never opens: the peer never reads
    outbox = Outbox(stream, write_timeout_s=0.05)
    failures: list[str] = []

    async def send(frame: bytes) -> None:
        try:
            await outbox.send(frame)
        except WriteFailed as exc:
            failures.append(exc.reason)

    started = trio.current_time()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, b"a")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(send, b"b")
    assert failures == ["write timeout", "write timeout"]
    assert trio.current_time() - started == pytest.approx(0.05)  # both at the one write's timeout
