"""An ATM client built only from ATM_HOST_SPEC.md, as the outside test suites will build one:
its own pyiso8583 spec dict (written here from spec section 2, not imported), psec for the PIN
block, the retail MAC and TR-31, raw TCP with the 2-byte length, and the CLI of spec 9
(`db init`, `fixtures load`, `serve --port 0`, `accounts show --json`) as subprocesses on an
embedded PostgreSQL in the data directory. It walks sign-on, key exchange, balance,
withdrawal + completion, withdrawal + reversal, duplicates, 94, wrong PIN and a bad MAC."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import iso8583
import psec.mac
import psec.pinblock
import psec.tr31
import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PAN = "6228480000000000017"
PIN = "1234"
TERMINAL = "ATM00042"
ACQUIRER = "12345678"


def n(max_len: int, kind: str = "LL") -> dict[str, object]:
    return {"data_enc": "ascii", "len_enc": "ascii", "len_type": len(kind), "max_len": max_len,
            "len_count": "bytes"}  # fmt: skip


def fixed(length: int) -> dict[str, object]:
    return {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": length,
            "len_count": "bytes"}  # fmt: skip


# Spec section 2, field by field.
SPEC: dict[str, dict[str, object]] = {
    "h": fixed(0), "t": fixed(4),
    "p": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 16,
          "len_count": "bytes"},
    "1": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 16,
          "len_count": "bytes"},
    "2": n(19), "3": fixed(6), "4": fixed(12), "7": fixed(10), "11": fixed(6), "12": fixed(6),
    "13": fixed(4), "14": fixed(4), "15": fixed(4), "18": fixed(4), "22": fixed(3),
    "32": n(11), "35": n(37), "37": fixed(12), "38": fixed(6), "39": fixed(2), "41": fixed(8),
    "42": fixed(15), "43": fixed(40), "48": {**n(999, "LLL"), "data_enc": "utf-8"},
    "49": fixed(3), "52": fixed(16), "54": n(120, "LLL"), "64": fixed(16), "70": fixed(3),
    "90": fixed(42), "95": fixed(42), "102": n(28), "103": n(28), "128": fixed(16),
}  # fmt: skip


def des3(key16: bytes) -> Cipher:  # type: ignore[type-arg]
    return Cipher(TripleDES(key16 + key16[:8]), modes.ECB())


def tags(value: str) -> dict[str, str]:
    raw, out = value.encode("utf-8"), {}
    while raw:
        tag, length = raw[:2].decode(), int(raw[2:5])
        out[tag], raw = raw[5 : 5 + length].decode("utf-8"), raw[5 + length :]
    return out


class Client:
    """Sign-on, key exchange, then MAC'd requests; one request at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.stan = 0
        self.tak = b""
        self.tpk = b""

    def next_stan(self) -> str:
        self.stan += 1
        return f"{self.stan:06d}"

    def exchange(self, fields: dict[str, str], *, mac: bool = True, bad_mac: bool = False) -> dict:
        doc = dict(fields)
        if mac:
            secondary = any(int(k) > 64 for k in doc if k.isdigit())
            doc["128" if secondary else "64"] = "0" * 16
            raw, _ = iso8583.encode(doc, SPEC)
            value = psec.mac.generate_retail_mac(self.tak[:8], self.tak[8:], bytes(raw[:-16]), 1)
            text = "0" * 16 if bad_mac else value.hex().upper()
            raw = raw[:-16] + text.encode()
        else:
            raw, _ = iso8583.encode(doc, SPEC)
        self.sock.sendall(struct.pack(">H", len(raw)) + bytes(raw))
        size = struct.unpack(">H", self._read(2))[0]
        answer = self._read(size)
        decoded, _ = iso8583.decode(answer, SPEC)
        mac_field = "128" if "128" in decoded else "64" if "64" in decoded else None
        if mac_field and self.tak:
            expected = psec.mac.generate_retail_mac(self.tak[:8], self.tak[8:], answer[:-16], 1)
            assert decoded[mac_field] == expected.hex().upper(), "response MAC"
        return decoded

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            assert chunk, "switch closed the connection"
            data += chunk
        return data

    def network(self, code: str) -> dict:
        return self.exchange({"t": "0800", "7": now7(), "11": self.next_stan(), "41": TERMINAL,
                              "70": code}, mac=False)  # fmt: skip

    def key_exchange(self) -> None:
        answer = self.network("161")
        assert answer["39"] == "00"
        elements = tags(answer["48"])
        tpk_header, self.tpk = psec.tr31.unwrap(TMK, elements["KP"])
        tak_header, self.tak = psec.tr31.unwrap(TMK, elements["KM"])
        assert (tpk_header.version_id, tpk_header.key_usage, tpk_header.mode_of_use) == (
            "B", "P0", "E",
        )  # fmt: skip
        assert (tak_header.key_usage, tak_header.mode_of_use) == ("M3", "C")

    def pin_block(self, pin: str) -> str:
        clear = psec.pinblock.encode_pinblock_iso_0(pin, PAN)
        encryptor = des3(self.tpk).encryptor()
        return (encryptor.update(clear) + encryptor.finalize()).hex().upper()

    def financial(self, code: str, amount: int, *, pin: str = PIN, **extra: str) -> dict:
        stamp = dt.datetime.now(dt.UTC)
        fields = {
            "t": "0200", "3": code, "4": f"{amount:012d}", "7": stamp.strftime("%m%d%H%M%S"),
            "11": self.next_stan(), "12": stamp.strftime("%H%M%S"), "13": stamp.strftime("%m%d"),
            "22": "021", "32": ACQUIRER, "35": f"{PAN}=3012101", "37": f"RRN{self.stan:09d}",
            "41": TERMINAL, "42": "ACCEPTOR0000001", "43": "Test ATM".ljust(40), "49": "156",
            "52": self.pin_block(pin),
        }  # fmt: skip
        fields.update(extra)
        return {"request": fields, "answer": self.exchange(fields)}

    def advice(self, mti: str, original: dict[str, str], reason: str | None = None) -> dict:
        field90 = "0200" + original["11"] + original["7"] + ACQUIRER.rjust(11, "0") + "0" * 11
        fields = {
            "t": mti, "2": PAN, "3": original["3"], "4": original["4"], "7": now7(),
            "11": self.next_stan(), "32": ACQUIRER, "37": original["37"], "41": TERMINAL,
            "49": "156", "90": field90,
        }  # fmt: skip
        if reason:
            fields["39"] = reason
        return self.exchange(fields)


def now7() -> str:
    return dt.datetime.now(dt.UTC).strftime("%m%d%H%M%S")


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switch.cli", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


@pytest.fixture
def switch_port(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    data_dir = tmp_path / "data"
    assert cli(data_dir, "db", "init", "--mode", "test").returncode == 0
    fixtures = {
        "accounts": [
            {"id": "ACC42", "name": "王小明", "currency": "156", "balance": 1_000_000},
            {"id": "ACC43", "name": "Smith J", "currency": "156", "balance": 0},
        ],
        "cards": [{"pan": PAN, "expiry": "3012", "account": "ACC42", "pin": PIN}],
        "terminals": [{"id": TERMINAL, "tmk": TMK.hex().upper()}],
    }
    (tmp_path / "fixtures.json").write_text(json.dumps(fixtures, ensure_ascii=False))
    loaded = cli(data_dir, "fixtures", "load", str(tmp_path / "fixtures.json"))
    assert loaded.returncode == 0, loaded.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "switch.cli", "serve", "--port", "0", "--metrics-port", "0",
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("listening "), line
        yield int(line.rsplit(":", 1)[1]), data_dir
    finally:
        server.terminate()
        server.wait(timeout=60)


def account(data_dir: Path) -> dict[str, int]:
    shown = cli(data_dir, "accounts", "show", "ACC42", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


def test_a_day_at_the_atm_through_the_wire_only(switch_port: tuple[int, Path]) -> None:
    port, data_dir = switch_port
    atm = Client(port)
    assert atm.network("301")["39"] == "58"  # not signed on yet
    assert atm.network("001")["39"] == "00"
    atm.key_exchange()

    balance = atm.financial("310000", 0)["answer"]
    assert balance["39"] == "00"
    # Field 54: ledger then available, 20 characters each (spec 2).
    assert balance["54"] == "0001156C000001000000" + "0002156C000001000000"

    first = atm.financial("011000", 50_000)
    assert first["answer"]["39"] == "00" and len(first["answer"]["38"]) == 6
    assert account(data_dir) == {"id": "ACC42", "currency": "156", "ledger_balance": 1_000_000,
                                 "available_balance": 950_000, "held": 50_000}  # fmt: skip
    # The same message again: the original answer, no second hold; other content: 94.
    repeat = atm.exchange(first["request"])
    assert (repeat["39"], repeat["38"]) == ("00", first["answer"]["38"])
    assert atm.exchange({**first["request"], "4": f"{60_000:012d}"})["39"] == "94"
    assert account(data_dir)["held"] == 50_000

    completion = atm.advice("0220", first["request"])
    assert (completion["t"], completion["39"]) == ("0230", "00")
    assert account(data_dir)["ledger_balance"] == 950_000
    assert account(data_dir)["held"] == 0

    second = atm.financial("011000", 30_000)
    assert second["answer"]["39"] == "00"
    reversal = atm.advice("0420", second["request"], reason="68")
    assert (reversal["t"], reversal["39"]) == ("0430", "00")
    assert account(data_dir)["available_balance"] == 950_000

    # Payee name inquiry (no PIN block), masked as spec 3 says; then the transfer itself.
    inquiry = atm.financial("390000", 0, **{"103": "ACC43"})
    del inquiry["request"]["52"]
    inquiry["request"]["11"] = atm.next_stan()
    named = atm.exchange(inquiry["request"])
    assert (named["39"], tags(named["48"])["PN"]) == ("00", "S******")
    transfer = atm.financial("400000", 20_000, **{"102": "ACC42", "103": "ACC43"})["answer"]
    assert transfer["39"] == "00"
    assert account(data_dir)["ledger_balance"] == 930_000
    assert atm.financial("400000", 100, **{"102": "ACC43", "103": "ACC42"})["answer"]["39"] == "57"

    assert atm.financial("011000", 10_000, pin="9999")["answer"]["39"] == "55"
    assert atm.financial("011000", 12_345)["answer"]["39"] == "13"  # not a multiple of 100.00
    bad = atm.financial("310000", 0)["request"]
    bad["11"] = atm.next_stan()
    assert atm.exchange(bad, bad_mac=True)["39"] == "63"
