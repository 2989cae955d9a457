"""Chip cards (EMV) on the host side: ATM_HOST_SPEC section 11. See docs/emv.md.

``tlv`` is the strict BER-TLV codec of field 55, ``icc_data`` the section 11 table and the
cryptogram input, ``checks`` the chip-check decision, ``store`` the ``card_chips`` table.
The cryptography itself stays in ``switch.hsm`` (keys never leave it).
"""
