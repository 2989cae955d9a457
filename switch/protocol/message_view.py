"""The typed view of a decoded message: :class:`Message`.

Kept apart from the codecs so the table-driven codec (:mod:`switch.protocol.fastcodec`),
its exact fallback and the pyiso8583 reference used in tests all build the same type
without importing each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from switch.protocol.codes import (
    MessageClass,
    NetworkCode,
    TransactionType,
    message_class,
    mti_is_repeat,
)
from switch.protocol.dialect import MAC_FIELD_PRIMARY, MAC_FIELD_SECONDARY
from switch.protocol.errors import MessageFormatError
from switch.protocol.field48 import decode_tags
from switch.protocol.masking import mask_fields

_set_attribute = object.__setattr__


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Message:
    """A decoded message: the MTI and its fields keyed like pyiso8583 (``"2"`` .. ``"128"``).

    Bitmaps are not kept: they follow from the fields. Properties give typed access
    to the fields every layer needs; they return None when the field is absent.
    """

    mti: str
    fields: Mapping[str, str]

    def __post_init__(self) -> None:
        if not isinstance(self.fields, MappingProxyType):
            object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))

    def __repr__(self) -> str:
        """Masked (PAN, track 2, PIN blocks, keys): a repr can reach a log or a traceback."""
        return f"Message(mti={self.mti!r}, fields={mask_fields(self.fields)!r})"

    def get(self, field: str) -> str | None:
        return self.fields.get(field)

    @property
    def message_class(self) -> MessageClass | None:
        return message_class(self.mti)

    @property
    def is_repeat(self) -> bool:
        return mti_is_repeat(self.mti)

    @property
    def stan(self) -> str | None:
        return self.fields.get("11")

    @property
    def terminal_id(self) -> str | None:
        """Field 41 without its right space padding (ans8 is fixed length)."""
        value = self.fields.get("41")
        return None if value is None else value.rstrip(" ")

    @property
    def processing_code(self) -> str | None:
        return self.fields.get("3")

    @property
    def transaction_type(self) -> TransactionType | None:
        code = self.fields.get("3")
        if code is None:
            return None
        try:
            return TransactionType(code[:2])
        except ValueError:
            return None

    @property
    def amount_minor(self) -> int | None:
        value = self.fields.get("4")
        return None if value is None else int(value)

    @property
    def response_code(self) -> str | None:
        return self.fields.get("39")

    @property
    def network_code(self) -> NetworkCode | None:
        value = self.fields.get("70")
        if value is None:
            return None
        try:
            return NetworkCode(value)
        except ValueError:
            return None

    @property
    def transmission_datetime(self) -> str | None:
        return self.fields.get("7")

    @property
    def acquirer_id(self) -> str | None:
        return self.fields.get("32")

    @property
    def rrn(self) -> str | None:
        return self.fields.get("37")

    @property
    def currency(self) -> str | None:
        return self.fields.get("49")

    @property
    def pan(self) -> str | None:
        """Field 2, or the PAN part of track 2 (field 35) when 2 is absent."""
        pan = self.fields.get("2")
        if pan is not None:
            return pan
        track2 = self.fields.get("35")
        if track2 is None:
            return None
        for separator in ("=", "D"):
            if separator in track2:
                return track2.split(separator, 1)[0]
        return None

    @property
    def mac_field(self) -> str | None:
        for field in (MAC_FIELD_SECONDARY, MAC_FIELD_PRIMARY):
            if field in self.fields:
                return field
        return None

    @property
    def mac(self) -> str | None:
        field = self.mac_field
        return None if field is None else self.fields[field]

    def tags(self) -> dict[str, str]:
        """Field 48 split into tags (empty when absent); malformed -> MessageFormatError."""
        value = self.fields.get("48")
        if value is None:
            return {}
        try:
            return decode_tags(value)
        except MessageFormatError as exc:
            raise MessageFormatError(exc.reason, mti=self.mti, stan=self.stan, field="48") from None


def trusted_message(mti: str, fields: MappingProxyType[str, str]) -> Message:
    """A :class:`Message` from values a codec has already validated, skipping ``__init__``.

    Why: the decoder builds one per request and the dataclass ``__init__`` plus
    ``__post_init__`` is a measurable share of a decode. ``fields`` must be a
    read-only proxy over a dict nobody else holds, as ``__post_init__`` would make.
    """
    message = Message.__new__(Message)
    _set_attribute(message, "mti", mti)
    _set_attribute(message, "fields", fields)
    return message
