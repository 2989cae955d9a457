"""How a stored value reads on a console page: column names and coded values in the page's
language (the words are in :mod:`switch.admin.console_text`), money from integer minor units
with its currency, times in UTC without microseconds, nothing missing shown as "—".

The templates call :func:`column` and :func:`cell` only, so no page can show a JSON key or a
Python value (``False``, ``None``, ``{...}``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from switch.admin.console_text import COLUMNS, LANGUAGES, VALUES

# ISO 4217 numeric code -> (letters, minor-unit digits), for the currencies accounts can hold.
CURRENCIES: Final[dict[str, tuple[str, int]]] = {
    "156": ("CNY", 2), "344": ("HKD", 2), "446": ("MOP", 2), "840": ("USD", 2),
    "978": ("EUR", 2), "392": ("JPY", 0), "410": ("KRW", 0),
}
DEFAULT_CURRENCY: Final = "156"  # the switch's own (terminals send field 49 = 156)
MONEY_COLUMNS: Final = frozenset({"amount_minor", "amount", "ledger_balance",
                                  "available_balance", "held", "pending_credit",
                                  "approved_amount_minor"})
CODE_COLUMNS: Final = frozenset({"response_code", "reason"})  # shown as "51 insufficient funds"
NOTHING: Final = "—"


def _index(language: str) -> int:
    return LANGUAGES.index(language) if language in LANGUAGES else 0


def column(name: str, language: str) -> str:
    """The heading for a column; an unlisted one is a bug the page test catches, shown as is."""
    pair = COLUMNS.get(name)
    return pair[_index(language)] if pair else name


def value_words(name: str, value: str, language: str) -> str | None:
    pair = VALUES.get((name, value)) or VALUES.get(("*", value))
    return pair[_index(language)] if pair else None


def money(minor: int, currency: str | None, language: str) -> str:
    """``162000`` CNY -> ``CNY 1,620.00`` / ``1,620.00 元`` (integer arithmetic only)."""
    letters, digits = CURRENCIES.get(currency or DEFAULT_CURRENCY, (currency or "", 2))
    sign = "-" if minor < 0 else ""
    units, fraction = divmod(abs(minor), 10**digits)
    text = f"{sign}{units:,}" + (f".{fraction:0{digits}d}" if digits else "")
    if language == "zh" and letters == "CNY":
        return f"{text} 元"
    return f"{letters} {text}"


def when(value: str | dt.datetime) -> str:
    """An ISO timestamp as ``2026-12-07 05:31:49 UTC``."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def cell(name: str, value: Any, language: str, row: Mapping[str, Any] | None = None) -> str:
    """One value of column ``name`` as the page shows it (``row`` gives the currency)."""
    if value is None or value == "":
        return NOTHING
    if name in MONEY_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
        return money(value, (row or {}).get("currency"), language)
    if isinstance(value, Mapping):  # an audit before/after: its status is what changed
        status = value.get("status")
        return cell("status", status, language) if status is not None else NOTHING
    if name.endswith("_at") or name == "at":
        try:
            return when(value)
        except (TypeError, ValueError):
            return str(value)
    text = str(value)
    if name == "processing_code":
        return value_words(name, text[:2], language) or text
    words = value_words(name, text, language)
    if name in CODE_COLUMNS:
        return f"{text} {words}" if words else text
    return words if words is not None else text
