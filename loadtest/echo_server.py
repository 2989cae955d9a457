"""The baseline: a bare Trio responder with the switch's framing and message sizes.

For every request it mirrors the MTI to the response MTI, copies the fields,
sets 39 = ``00`` and keeps a MAC-sized field (the request's own MAC field, or
none for an 0800): a response about the size the switch sends, with none of the
switch's work (no MAC check, no PIN, no database). Requests on one connection
are answered in order. Run it alone with ``python -m loadtest.echo_server``; it
prints ``listening HOST:PORT`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

import trio

from loadtest.limits import raise_open_files_limit
from loadtest.wire import (
    WireFormatError,
    decode_message,
    encode_message,
    frame,
    response_mti,
    take_frames,
)

listen_backlog_max = 4096  # this machine's somaxconn
receive_bytes_max = 65_536


def echo_response(request: bytes) -> bytes:
    """The echo answer to one request payload (see the module docstring)."""
    mti, fields = decode_message(request)
    fields[39] = b"00"
    return encode_message(response_mti(mti), fields)


async def _serve_connection(stream: trio.SocketStream) -> None:
    buffer = bytearray()
    try:
        while True:
            data = await stream.receive_some(receive_bytes_max)
            if not data:
                return
            buffer += data
            replies = [frame(echo_response(payload)) for payload in take_frames(buffer)]
            if replies:
                await stream.send_all(b"".join(replies))
    except (trio.BrokenResourceError, trio.ClosedResourceError, WireFormatError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def serve(
    host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Listen on ``host:port`` (0 = any free port) and report the bound port."""
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=listen_backlog_max)
    bound_port = int(listeners[0].socket.getsockname()[1])
    task_status.started(bound_port)
    await trio.serve_listeners(_serve_connection, listeners)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.echo_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    raise_open_files_limit()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve, args.host, args.port)
            print(f"listening {args.host}:{port}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
