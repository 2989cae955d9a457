"""Errors raised by the pure primitives (bad lengths, malformed blocks, failed checks)."""

from __future__ import annotations


class PrimitiveError(ValueError):
    """Base class: a primitive was given input it cannot work with."""


class KeyLengthError(PrimitiveError):
    """A key has a length the algorithm does not accept."""


class DataLengthError(PrimitiveError):
    """Data is not a whole number of cipher blocks, or has the wrong length."""


class PinFormatError(PrimitiveError):
    """A PIN, PAN or decrypted PIN block does not follow ISO 9564 (never says which digit)."""


class KeyBlockError(PrimitiveError):
    """A TR-31 key block is malformed or its authenticator does not verify."""


class DukptError(PrimitiveError):
    """A key serial number is malformed or its counter is not usable."""


class EmvDataError(PrimitiveError):
    """EMV input (PAN, PSN, ATC, ARQC, response code) has the wrong form or length."""
