"""TR-31 (ANSI X9.143) key blocks, versions B (TDES) and D (AES), with optional blocks.

A key block is ``header (ASCII) + hex(encrypted key data) + hex(MAC)``. The
key data is ``2-byte key length in bits + key + random padding``. Both
versions derive a key-block encryption key (KBEK) and MAC key (KBMK) from the
key-block protection key (KBPK) with CMAC over 8-byte derivation data

    counter | usage (0000 enc, 0001 MAC) | 00 | algorithm | length in bits

then MAC the header + clear key data (CMAC; 8 bytes for B, 16 for D) and
CBC-encrypt the key data with the MAC as IV. The header is bound by the MAC,
so usage, algorithm and mode of use cannot be changed without detection.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field

from switch.hsm.primitives.aes import aes_cbc_decrypt, aes_cbc_encrypt, check_aes_key
from switch.hsm.primitives.errors import KeyBlockError
from switch.hsm.primitives.mac import aes_cmac, tdes_cmac

header_chars_fixed = 16
# Longest key block we accept (a 9999-character length field is the format's own cap).
key_block_chars_max = 9999
_version_params = {
    # version: (cipher block bytes, MAC bytes)
    "B": (8, 8),
    "D": (16, 16),
}
_printable = {chr(c) for c in range(0x20, 0x7F)}


@dataclass(frozen=True, slots=True)
class Tr31Header:
    """The attributes a key block binds to its key."""

    version: str = "D"
    key_usage: str = "P0"
    algorithm: str = "T"
    mode_of_use: str = "E"
    key_version: str = "00"
    exportability: str = "N"
    optional_blocks: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        checks = (
            (self.version, 1),
            (self.key_usage, 2),
            (self.algorithm, 1),
            (self.mode_of_use, 1),
            (self.key_version, 2),
            (self.exportability, 1),
        )
        for value, length in checks:
            if len(value) != length or not value.isascii() or not value.isalnum():
                raise KeyBlockError(f"TR-31 header field {value!r} must be {length} alphanumerics")
        for block_id, data in self.optional_blocks:
            if len(block_id) != 2 or not block_id.isascii() or not block_id.isalnum():
                raise KeyBlockError(f"TR-31 optional block ID {block_id!r} is invalid")
            if any(c not in _printable for c in data) or len(data) > 0xFF - 4:
                raise KeyBlockError(f"TR-31 optional block {block_id} data is invalid")

    def encode(self, block_length: int) -> str:
        """Header text for a key block of ``block_length`` characters."""
        blocks = "".join(f"{bid}{len(data) + 4:02X}{data}" for bid, data in self.optional_blocks)
        return (
            f"{self.version}{block_length:04d}{self.key_usage}{self.algorithm}"
            f"{self.mode_of_use}{self.key_version}{self.exportability}"
            f"{len(self.optional_blocks):02d}00{blocks}"
        )

    def optional_block(self, block_id: str) -> str | None:
        """Data of the optional block ``block_id`` (e.g. ``KS``), or None."""
        for bid, data in self.optional_blocks:
            if bid == block_id:
                return data
        return None


def _derive(version: str, kbpk: bytes, usage: int) -> bytes:
    if version == "B":
        if len(kbpk) not in (16, 24):
            raise KeyBlockError("a version B KBPK is a double or triple length TDES key")
        algorithm, rounds = (0x0000, 2) if len(kbpk) == 16 else (0x0001, 3)
        cmac_fn = tdes_cmac
    else:
        check_aes_key(kbpk)
        algorithm = {16: 0x0002, 24: 0x0003, 32: 0x0004}[len(kbpk)]
        rounds = (len(kbpk) + 15) // 16
        cmac_fn = aes_cmac
    bits = len(kbpk) * 8
    out = b"".join(
        cmac_fn(
            kbpk,
            bytes([i])
            + usage.to_bytes(2, "big")
            + b"\x00"
            + algorithm.to_bytes(2, "big")
            + bits.to_bytes(2, "big"),
        )
        for i in range(1, rounds + 1)
    )
    return out[: len(kbpk)]


def _cbc(version: str, key: bytes, data: bytes, iv: bytes, encrypt: bool) -> bytes:
    if version == "B":
        from switch.hsm.primitives.des import tdes_cbc_decrypt, tdes_cbc_encrypt

        return (tdes_cbc_encrypt if encrypt else tdes_cbc_decrypt)(key, data, iv)
    return (aes_cbc_encrypt if encrypt else aes_cbc_decrypt)(key, data, iv)


def _mac(version: str, key: bytes, data: bytes) -> bytes:
    return tdes_cmac(key, data) if version == "B" else aes_cmac(key, data)


def _params(version: str) -> tuple[int, int]:
    try:
        return _version_params[version]
    except KeyError:
        raise KeyBlockError(f"TR-31 version {version!r} is not supported (B, D)") from None


def _pad_header(header: Tr31Header, block_bytes: int) -> Tr31Header:
    """Add a ``PB`` padding block so the header is a whole number of cipher blocks."""
    if not header.optional_blocks:
        return header
    length = len(header.encode(0))
    if length % block_bytes == 0:
        return header
    pad = (-(length + 4)) % block_bytes
    blocks = (*header.optional_blocks, ("PB", "0" * pad))
    return Tr31Header(
        header.version,
        header.key_usage,
        header.algorithm,
        header.mode_of_use,
        header.key_version,
        header.exportability,
        blocks,
    )


def tr31_wrap(kbpk: bytes, header: Tr31Header, key: bytes, *, masked_key_bytes: int = 0) -> str:
    """Wrap ``key`` under ``kbpk``; pad the key data to ``masked_key_bytes`` to hide its length."""
    block_bytes, mac_bytes = _params(header.version)
    header = _pad_header(header, block_bytes)
    body_len = 2 + max(len(key), masked_key_bytes)
    padded_len = body_len + (-body_len) % block_bytes
    key_data = (len(key) * 8).to_bytes(2, "big") + key
    key_data += secrets.token_bytes(padded_len - len(key_data))
    total = len(header.encode(0)) + 2 * (padded_len + mac_bytes)
    header_text = header.encode(total)
    kbek = _derive(header.version, kbpk, 0x0000)
    kbmk = _derive(header.version, kbpk, 0x0001)
    mac = _mac(header.version, kbmk, header_text.encode("ascii") + key_data)[:mac_bytes]
    encrypted = _cbc(header.version, kbek, key_data, mac, encrypt=True)
    return header_text + encrypted.hex().upper() + mac.hex().upper()


def parse_tr31_header(block: str) -> tuple[Tr31Header, int]:
    """Parse the header (with optional blocks); return it and its length in characters."""
    if not block.isascii() or len(block) < header_chars_fixed:
        raise KeyBlockError("TR-31 key block is too short or not ASCII")
    if not block[1:5].isdigit() or int(block[1:5]) != len(block):
        raise KeyBlockError("TR-31 key block length field does not match its length")
    count_text = block[12:14]
    if not count_text.isdigit():
        raise KeyBlockError("TR-31 optional block count is not numeric")
    position = header_chars_fixed
    blocks: list[tuple[str, str]] = []
    for _ in range(int(count_text)):
        block_id, length_text = block[position : position + 2], block[position + 2 : position + 4]
        try:
            length = int(length_text, 16)
        except ValueError:
            raise KeyBlockError("TR-31 optional block length is not hex") from None
        if length < 4 or position + length > len(block):
            raise KeyBlockError("TR-31 optional block length is invalid")
        blocks.append((block_id, block[position + 4 : position + length]))
        position += length
    header = Tr31Header(
        block[0], block[5:7], block[7], block[8], block[9:11], block[11], tuple(blocks)
    )
    return header, position


def tr31_unwrap(kbpk: bytes, block: str) -> tuple[Tr31Header, bytes]:
    """Check the MAC and decrypt a key block; return its header and the clear key."""
    if len(block) > key_block_chars_max:
        raise KeyBlockError("TR-31 key block is too long")
    header, header_chars = parse_tr31_header(block)
    block_bytes, mac_bytes = _params(header.version)
    body = block[header_chars:]
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise KeyBlockError("TR-31 key block body is not hex") from None
    key_data_enc, mac = raw[:-mac_bytes], raw[-mac_bytes:]
    if (
        len(key_data_enc) < block_bytes
        or len(key_data_enc) % block_bytes
        or header_chars % block_bytes
    ):
        raise KeyBlockError("TR-31 key block has an invalid length")
    kbek = _derive(header.version, kbpk, 0x0000)
    kbmk = _derive(header.version, kbpk, 0x0001)
    key_data = _cbc(header.version, kbek, key_data_enc, mac, encrypt=False)
    expected = _mac(header.version, kbmk, block[:header_chars].encode("ascii") + key_data)
    if not hmac.compare_digest(expected[:mac_bytes], mac):
        raise KeyBlockError("TR-31 key block MAC does not verify (wrong KBPK or altered block)")
    key_bits = int.from_bytes(key_data[:2], "big")
    if key_bits % 8 or key_bits == 0 or 2 + key_bits // 8 > len(key_data):
        raise KeyBlockError("TR-31 key block holds an invalid key length")
    return header, key_data[2 : 2 + key_bits // 8]
