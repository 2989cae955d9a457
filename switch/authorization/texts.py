"""Screen texts for 48/TX in the customer's language (48/LG: ``en`` or ``zh``).

The switch sends a TX element on every declined 0210 so the terminal can show the reason;
approved answers need no text (the terminal's own screens cover them). Unknown languages fall
back to English (spec 3 names only ``en`` and ``zh``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

LANGUAGE_DEFAULT = "en"
# Key of the screen text asking for a chip card to be inserted (not a response code).
INSERT_CHIP = "insert_chip"

_TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "00": {"en": "Approved", "zh": "交易成功"},
        "05": {"en": "Transaction declined", "zh": "交易被拒绝"},
        "12": {"en": "Transaction not supported", "zh": "不支持此交易"},
        "13": {"en": "Invalid amount", "zh": "金额无效"},
        "14": {"en": "Invalid card", "zh": "无效卡号"},
        "30": {"en": "Message format error", "zh": "报文格式错误"},
        "41": {"en": "Card reported lost, card retained", "zh": "挂失卡，卡片已吞没"},
        "43": {"en": "Card reported stolen, card retained", "zh": "被盗卡，卡片已吞没"},
        "51": {"en": "Insufficient funds", "zh": "余额不足"},
        "54": {"en": "Card expired", "zh": "卡片已过期"},
        "55": {"en": "Incorrect PIN", "zh": "密码错误"},
        "57": {"en": "Transaction not permitted", "zh": "不允许此交易"},
        "58": {"en": "Terminal not permitted", "zh": "终端不允许此交易"},
        "59": {"en": "Card cannot be accepted, card returned", "zh": "卡片验证失败，请取回卡片"},
        "61": {"en": "Amount limit exceeded", "zh": "超出金额限制"},
        "63": {"en": "Security violation", "zh": "安全校验失败"},
        "65": {"en": "Too many withdrawals today", "zh": "超出取款次数限制"},
        "75": {"en": "PIN tries exceeded, card blocked", "zh": "密码错误次数超限，卡片已锁定"},
        "76": {"en": "Payee account not found", "zh": "收款账户不存在"},
        "91": {"en": "Service unavailable, try later", "zh": "系统暂不可用，请稍后再试"},
        "94": {"en": "Duplicate transaction", "zh": "重复交易"},
        "96": {"en": "System error", "zh": "系统故障"},
        # Not a response code: the 05 of a chip card read by its stripe (section 11).
        INSERT_CHIP: {"en": "Please insert your card (chip)", "zh": "请插入卡片，使用芯片交易"},
    }
)


def screen_text(code: str, language: str | None) -> str:
    """The TX text for a response code; English when the language is unknown."""
    texts = _TEXTS.get(code, _TEXTS["05"])
    return texts.get(language or LANGUAGE_DEFAULT, texts[LANGUAGE_DEFAULT])
