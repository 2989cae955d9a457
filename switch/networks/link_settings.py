"""What one outbound network link is configured with, checked when it is built.

Apart from ``link.py`` (the connection itself) so that the settings a plug-in reads from its
configuration, their limits and the TLS context they make can be read and tested without a
connection: each configurable limit of a link is named here with its unit and why.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkSettings:
    host: str
    port: int
    # Field 41 of the switch's own 0800s (the network knows the switch by it).
    node_id: str = "ATMSWTCH"
    framing: str = "binary2"
    frame_size_bytes_max: int = 4096
    connect_timeout_s: float = 5.0
    # Sign-on and echo answers must come back within this long, or the link is reset.
    network_management_timeout_s: float = 5.0
    # Send an echo after this long without receiving anything.
    echo_idle_s: float = 30.0
    # Reconnect backoff doubles from the minimum up to the maximum (bounded).
    reconnect_backoff_min_s: float = 0.1
    reconnect_backoff_max_s: float = 30.0
    # Requests outstanding at once; one more is refused at once (91) instead of queueing.
    inflight_max: int = 64
    # A send the peer does not take within this long resets the link (a peer not reading).
    send_timeout_s: float = 5.0
    # TLS: the CA file that verifies the network; our client certificate and key; the name
    # expected in the network's certificate (default: host).
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    # A lab link that knowingly runs without TLS (and/or MACs): logged as a warning. Without
    # it a link with no TLS is logged at ERROR whenever it starts (issue 18).
    insecure: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be 1-65535")
        if self.inflight_max < 1 or self.echo_idle_s <= 0 or self.reconnect_backoff_min_s <= 0:
            raise ValueError("inflight_max, echo_idle_s and backoff must be positive")
        if self.reconnect_backoff_max_s < self.reconnect_backoff_min_s:
            raise ValueError("reconnect_backoff_max_s is below the minimum")
        if self.send_timeout_s <= 0:
            raise ValueError("send_timeout_s must be positive")
        if (self.tls_cert or self.tls_key) and not self.tls_ca:
            raise ValueError("a TLS client certificate needs tls_ca (the network's CA)")

    def tls_context(self) -> ssl.SSLContext | None:
        """TLS 1.2+ verifying the network, with our client certificate when configured."""
        if not self.tls_ca:
            return None
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.tls_ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key or None)
        return context


def next_backoff(current_s: float, settings: LinkSettings) -> float:
    """Exponential backoff, bounded by the settings."""
    doubled = max(current_s * 2, settings.reconnect_backoff_min_s)
    return min(settings.reconnect_backoff_max_s, doubled)
