"""Secure by default on the wire (issue 18): may ``serve`` listen for terminals like this?

A terminal link without client-certificate TLS lets anyone who knows a terminal id sign on as
that ATM (a newer sign-on replaces the older connection, across nodes too) and then rotate its
keys by a key exchange. So on a production installation (``db init`` without ``--mode test``)
``serve`` refuses to listen unless the terminal listener has a certificate, a key and the CA
that issues terminal certificates (``server.tls_cert``, ``tls_key``, ``tls_client_ca``), or the
configuration says ``plain_tcp = true`` explicitly; then the choice is logged at ERROR on every
start. A test installation may listen in plain TCP, with a warning. The decision is pure; the
caller (``serve``) logs it or stops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from switch.config import ServerConfig


class PlainTerminalLinkRefused(Exception):
    """A production installation without client-certificate TLS or ``plain_tcp = true``."""


@dataclass(frozen=True, slots=True)
class LinkWarning:
    level: int  # logging.ERROR or logging.WARNING
    message: str


def has_client_certificate_tls(server: ServerConfig) -> bool:
    return bool(server.tls_cert and server.tls_client_ca)


def check_terminal_link(mode: str | None, server: ServerConfig) -> LinkWarning | None:
    """None when the link is client-certificate TLS; else what to log, or refused."""
    if has_client_certificate_tls(server):
        return None
    what = ("TLS without client certificates" if server.tls_cert else "plain TCP")
    if mode == "test":
        return LinkWarning(logging.WARNING,
                           f"terminal links use {what} (allowed on a test installation only)")
    if server.plain_tcp:
        return LinkWarning(
            logging.ERROR,
            f"terminal links use {what} on a production installation (server.plain_tcp = "
            "true): anyone who knows a terminal id can sign on as that ATM")
    raise PlainTerminalLinkRefused(
        f"refusing to listen for terminals with {what} on a production installation: set "
        "server.tls_cert, server.tls_key and server.tls_client_ca (a lab PKI: python -m "
        "switch.certs), "
        "or set server.plain_tcp = true to accept the risk (docs/security.md)")
