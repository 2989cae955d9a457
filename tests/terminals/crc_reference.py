"""An independent, bit-serial CRC-16/XMODEM (long division, MSB first), used only to show the
intermediate values of the golden frames; the code under test is table-driven."""


def crc16_xmodem_bitwise(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc
