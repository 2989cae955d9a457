"""Masked reprs for objects that carry card data, so a repr in a log or traceback is safe.

The masking rules themselves belong to the wire format and live with the dialect in
:mod:`switch.protocol.masking` (PAN 6 + 4, track 2, per-field rules, free-text scrubbing);
this module applies them to attribute names and values. :mod:`ops.logs` applies them to log
lines. Fails closed like the rules: an attribute whose name suggests a secret is wiped.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Final

from switch.protocol.masking import WIPED, mask_fields, mask_pan, mask_track2, scrub_text

# Attribute names whose values are never shown by masked_repr.
_WIPED_NAMES: Final = re.compile(
    r"(?i)(pin|key|tmk|tpk|tak|zpk|pvk|kek|cvv|cvc|secret|password|component|track|icc|mac)"
)


def mask_attribute(name: str, value: object) -> str:
    """How ``masked_repr`` shows one attribute: PANs 6+4, secrets wiped, the rest as repr."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    lowered = name.lower()
    if lowered in ("pan", "card_number", "primary_account_number") or lowered.endswith("_pan"):
        return repr(mask_pan(str(value)))
    if "track" in lowered:
        return repr(mask_track2(str(value)))
    if _WIPED_NAMES.search(lowered):
        return repr(WIPED)
    if isinstance(value, Mapping):
        return repr(mask_fields({str(k): v for k, v in value.items()}))
    return scrub_text(repr(value))


def masked_repr(self: object) -> str:
    """A ``__repr__`` for dataclasses that carry card data: ``__repr__ = masked_repr``."""
    names = [f.name for f in dataclasses.fields(self)] if dataclasses.is_dataclass(self) else []
    shown = ", ".join(f"{name}={mask_attribute(name, getattr(self, name))}" for name in names)
    return f"{type(self).__name__}({shown})"
