"""Issue a private CA, a server certificate and terminal certificates (spec 10, optional TLS).

Why here: a listener that requires client certificates is only testable, and only
deployable on a lab network, if there is a simple way to make the certificates. A
production estate uses its own PKI; this module is the documented way for tests,
the demo and a lab. A terminal certificate's subject CN is the terminal id (field
41): the switch accepts a sign-on only for that id.

    python -m switch.certs ca DIR                      # DIR/ca.pem, DIR/ca.key
    python -m switch.certs server DIR localhost        # DIR/server.pem, DIR/server.key
    python -m switch.certs terminal DIR ATM00001       # DIR/ATM00001.pem, DIR/ATM00001.key

Then serve with ``server.tls_cert = DIR/server.pem``, ``server.tls_key = DIR/server.key``
and ``server.tls_client_ca = DIR/ca.pem``. Private keys are written mode 0600.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# A lab certificate's lifetime; short enough that a forgotten one expires.
VALIDITY_DAYS_DEFAULT: Final = 365
# Clock skew allowed between the issuer and the peers.
BACKDATE: Final = dt.timedelta(minutes=5)
CA_FILE: Final = "ca"


@dataclasses.dataclass(frozen=True, slots=True)
class Credential:
    """A certificate and its private key, both PEM."""

    cert_pem: bytes
    key_pem: bytes = dataclasses.field(repr=False)

    def save(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write ``name.pem`` and ``name.key`` (0600, created so) in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(self.cert_pem)
        descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self.key_pem)
        return cert_path, key_path

    @classmethod
    def load(cls, directory: Path, name: str) -> Credential:
        return cls(
            (directory / f"{name}.pem").read_bytes(), (directory / f"{name}.key").read_bytes()
        )


def issue_ca(
    common_name: str = "atm-switch lab CA", *, days: int = VALIDITY_DAYS_DEFAULT
) -> Credential:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _base(name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return _finish(builder.sign(key, hashes.SHA256()), key)


def issue_terminal(
    ca: Credential, terminal_id: str, *, days: int = VALIDITY_DAYS_DEFAULT
) -> Credential:
    """A client certificate whose subject CN is ``terminal_id`` (field 41)."""
    if not terminal_id or len(terminal_id) > 8 or not terminal_id.isascii():
        raise ValueError("a terminal id is 1-8 ASCII characters (field 41, ans8)")
    return _issue_leaf(ca, terminal_id, ExtendedKeyUsageOID.CLIENT_AUTH, (), days)


def issue_server(
    ca: Credential, names: Sequence[str] = ("localhost",), *, days: int = VALIDITY_DAYS_DEFAULT
) -> Credential:
    """A server certificate for ``names`` (DNS names or IP addresses, in subjectAltName)."""
    if not names:
        raise ValueError("a server certificate needs at least one name")
    return _issue_leaf(ca, names[0], ExtendedKeyUsageOID.SERVER_AUTH, names, days)


def _issue_leaf(
    ca: Credential,
    common_name: str,
    usage: x509.ObjectIdentifier,
    alt_names: Sequence[str],
    days: int,
) -> Credential:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an EC key made by issue_ca")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _base(subject, ca_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(name) for name in alt_names]), critical=False
        )
    return _finish(builder.sign(ca_key, hashes.SHA256()), key)


def _base(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    if days <= 0:
        raise ValueError("validity must be at least one day")
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _finish(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Credential:
    return Credential(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m switch.certs", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ca = commands.add_parser("ca", help="create DIR/ca.pem and DIR/ca.key")
    ca.add_argument("directory", type=Path)
    server = commands.add_parser("server", help="a server certificate signed by DIR's CA")
    server.add_argument("directory", type=Path)
    server.add_argument("names", nargs="+", help="DNS names or IP addresses")
    terminal = commands.add_parser("terminal", help="a terminal certificate (CN = terminal id)")
    terminal.add_argument("directory", type=Path)
    terminal.add_argument("terminal_id")
    for command in (ca, server, terminal):
        command.add_argument("--days", type=int, default=VALIDITY_DAYS_DEFAULT)
    args = parser.parse_args(argv)
    directory: Path = args.directory
    try:
        if args.command == "ca":
            if (directory / f"{CA_FILE}.key").exists():
                raise ValueError(f"{directory / CA_FILE}.key exists; refusing to replace a CA")
            written = issue_ca(days=args.days).save(directory, CA_FILE)
        else:
            authority = Credential.load(directory, CA_FILE)
            if args.command == "server":
                written = issue_server(authority, args.names, days=args.days).save(
                    directory, "server"
                )
            else:
                written = issue_terminal(authority, args.terminal_id, days=args.days).save(
                    directory, args.terminal_id
                )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(" ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
