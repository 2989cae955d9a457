"""``ops.install`` on a real SwitchApp over the real PostgreSQL: the snapshot task runs beside
the server and fills the holds gauges, the pool gauges read the asyncpg pool, and a TLS
certificate's notAfter becomes the expiry gauge (a certificate generated here)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ledger_adapter.postgres import PostgresLedger
from ops.install import certificate_expiry, install
from switch.app import SwitchApp
from switch.config import Config
from switch.db.runtime import Database

NOT_AFTER = dt.datetime(2031, 5, 17, 12, 0, tzinfo=dt.UTC)


def write_certificate(path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "atm-switch")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).not_valid_after(NOT_AFTER)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


async def test_install_wires_snapshot_pool_and_certificate(db: Database, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_certificate(cert, key)
    assert certificate_expiry(cert) == NOT_AFTER.timestamp()
    ledger = PostgresLedger(db)
    await ledger.open_account("I1", name="i", currency="156", balance=100_000)
    await ledger.hold("k", account_id="I1", amount=40_000, direction="debit",
                      expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
                      expiry_action="capture")
    config = Config()
    config = dataclasses.replace(config, server=dataclasses.replace(
        config.server, port=0, tls_cert=None))
    app = SwitchApp(config, db)
    snapshot = install(app)
    registry = app.metrics.registry
    assert registry.get_sample_value("atm_db_pool_connections", {"state": "max"}) == 8
    async with trio.open_nursery() as nursery:
        for task in app._background:  # what SwitchApp.run starts beside the server
            await nursery.start(task)
        with trio.fail_after(10):
            await snapshot.first_refresh.wait()
        nursery.cancel_scope.cancel()
    assert registry.get_sample_value("atm_holds_open", {"type": "withdrawal"}) == 1
    assert registry.get_sample_value("atm_holds_open_amount", {"type": "withdrawal"}) == 40_000
    # Without TLS the series is absent (the expiry alert must not fire on plain TCP).
    assert registry.get_sample_value("atm_tls_certificate_expiry_timestamp_seconds") is None
    with_tls = SwitchApp(dataclasses.replace(config, server=dataclasses.replace(
        config.server, tls_cert=str(cert), tls_key=str(key))), db)
    install(with_tls)
    assert with_tls.metrics.registry.get_sample_value(
        "atm_tls_certificate_expiry_timestamp_seconds") == NOT_AFTER.timestamp()
