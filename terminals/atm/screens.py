"""What the customer sees: every screen in English and Chinese, and the keys it offers.

Texts live in one table so a translator edits one place and a test can check that every screen
exists in both languages. Amounts are formatted from integer minor units (fen), never floats.
The keys a screen offers are the function keys beside it, lettered ``A``, ``B``... as on an
ATM's fascia, each with its label in the screen's language: no option name (``withdrawal``)
is ever shown. The welcome screen comes before the customer chose a language, so it is in both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

LANGUAGES = ("en", "zh")

# Screen name -> language -> lines. ``{name}`` placeholders are filled from the screen's values.
TEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "welcome": {  # before the language is chosen: both, on either
        "en": ("Welcome  欢迎", "Please insert your card  请插入银行卡"),
        "zh": ("欢迎  Welcome", "请插入银行卡  Please insert your card"),
    },
    "language": {
        "en": ("Please choose your language", "请选择语言"),
        "zh": ("Please choose your language", "请选择语言"),
    },
    "enter_pin": {"en": ("Please enter your PIN",), "zh": ("请输入密码",)},
    "reenter_pin": {
        "en": ("Incorrect PIN", "Please enter your PIN again"),
        "zh": ("密码错误", "请重新输入密码"),
    },
    "menu": {
        "en": ("Please choose a service",),
        "zh": ("请选择服务",),
    },
    "withdrawal_amount": {
        "en": ("Withdrawal", "Choose an amount or enter a multiple of 100"),
        "zh": ("取款", "请选择金额或输入100的整数倍"),
    },
    "invalid_amount": {
        "en": ("The amount must be a multiple of 100",),
        "zh": ("金额必须是100的整数倍",),
    },
    "insufficient_cash": {
        "en": ("Sorry, this ATM cannot pay {amount}", "Please choose another amount"),
        "zh": ("抱歉，本机现金不足，无法支付 {amount}", "请选择其他金额"),
    },
    "please_wait": {"en": ("Processing, please wait",), "zh": ("正在处理，请稍候",)},
    "take_cash": {"en": ("Please take your cash",), "zh": ("请取走现金",)},
    "partial_dispense": {
        "en": ("Only {amount} could be dispensed", "The rest will not be debited"),
        "zh": ("仅出钞 {amount}", "未出钞部分不会扣款"),
    },
    "deposit_insert": {
        "en": ("Deposit", "Please insert your notes"),
        "zh": ("存款", "请放入钞票"),
    },
    "deposit_confirm": {
        "en": ("Counted {amount}", "{rejected} note(s) returned", "Add more or confirm"),
        "zh": ("点钞金额 {amount}", "退回 {rejected} 张", "继续存入或确认"),
    },
    "transfer_payee": {
        "en": ("Transfer", "Enter the payee's account number"),
        "zh": ("转账", "请输入收款账号"),
    },
    "transfer_confirm_payee": {
        "en": ("Payee: {payee}", "Account: {account}", "Is this correct?"),
        "zh": ("收款人：{payee}", "账号：{account}", "信息是否正确？"),
    },
    "transfer_amount": {"en": ("Enter the amount to transfer",), "zh": ("请输入转账金额",)},
    "balance": {
        "en": ("Ledger balance {ledger}", "Available balance {available}"),
        "zh": ("账面余额 {ledger}", "可用余额 {available}"),
    },
    "new_pin": {"en": ("Enter your new PIN",), "zh": ("请输入新密码",)},
    "confirm_new_pin": {"en": ("Enter your new PIN again",), "zh": ("请再次输入新密码",)},
    "pins_differ": {
        "en": ("The two PINs do not match", "Please start again"),
        "zh": ("两次输入的密码不一致", "请重新输入"),
    },
    "declined": {
        "en": ("Transaction declined ({code})", "{text}"),
        "zh": ("交易被拒绝（{code}）", "{text}"),
    },
    "host_unavailable": {
        "en": ("Sorry, the service is unavailable", "Your account has not been charged"),
        "zh": ("抱歉，暂时无法服务", "您的账户未被扣款"),
    },
    "another": {
        "en": ("Would you like another service?",),
        "zh": ("是否继续其他服务？",),
    },
    "take_card": {"en": ("Please take your card",), "zh": ("请取走您的银行卡",)},
    "card_retained": {
        "en": ("Your card has been retained", "Please contact your bank"),
        "zh": ("您的银行卡已被吞卡", "请联系发卡行"),
    },
    "card_unreadable": {
        "en": ("Your card cannot be read",),
        "zh": ("无法读取您的银行卡",),
    },
    "card_declined": {
        "en": ("Your card declined the transaction; no money has moved",),
        "zh": ("您的银行卡拒绝了本交易，账户未变动",),
    },
    "receipt_printed": {"en": ("Please take your receipt",), "zh": ("请取走凭条",)},
}

# Menu keys, in screen order, and their labels.
MENU_LABELS: dict[str, dict[str, str]] = {
    "withdrawal": {"en": "Withdrawal", "zh": "取款"},
    "deposit": {"en": "Deposit", "zh": "存款"},
    "transfer": {"en": "Transfer", "zh": "转账"},
    "balance": {"en": "Balance", "zh": "查询余额"},
    "mini_statement": {"en": "Mini statement", "zh": "迷你对账单"},
    "pin_change": {"en": "Change PIN", "zh": "修改密码"},
    "cancel": {"en": "Cancel", "zh": "取消"},
}
KEY_LABELS: dict[str, dict[str, str]] = {
    "en": {"en": "English", "zh": "English"},
    "zh": {"en": "中文", "zh": "中文"},
    "confirm": {"en": "Confirm", "zh": "确认"},
    "cancel": {"en": "Cancel", "zh": "取消"},
    "add_more": {"en": "Add more", "zh": "继续存入"},
    "yes": {"en": "Yes", "zh": "是"},
    "no": {"en": "No", "zh": "否"},
    "ok": {"en": "OK", "zh": "确定"},
    "other": {"en": "Other amount", "zh": "其他金额"},
}


# The fascia's function keys (four each side of the screen), for the options of a screen.
FUNCTION_KEYS = "ABCDEFGH"


def format_amount(minor: int, language: str = "en") -> str:
    """``123456`` -> ``CNY 1,234.56`` / ``1,234.56元`` (integer arithmetic only)."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    text = f"{sign}{units:,}.{cents:02d}"
    return f"{text}元" if language == "zh" else f"CNY {text}"


@dataclass(frozen=True, slots=True)
class Screen:
    """One screen: its name (what scripts and tests key on), the text, and the keys offered."""

    name: str
    language: str
    lines: tuple[str, ...]
    options: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    accepts_input: bool = False  # free entry (amount, account) besides the option keys

    def __post_init__(self) -> None:
        if len(self.options) > len(FUNCTION_KEYS):
            raise ValueError(f"screen {self.name}: more options than function keys")

    @property
    def keys(self) -> tuple[str, ...]:
        """The function key of each option, in order: ``A``, ``B``, ..."""
        return tuple(FUNCTION_KEYS[:len(self.options)])

    def option_for(self, typed: str) -> str | None:
        """The option a pressed key (``b`` or ``B``) selects; None for any other key."""
        key = typed.strip().upper()
        return self.options[self.keys.index(key)] if key in self.keys else None

    def render(self) -> str:
        labels = [_label(option, self.language) for option in self.options]
        keys = "  ".join(f"[{key}] {label}" for key, label in zip(self.keys, labels,
                                                                   strict=True))
        return "\n".join([*self.lines, *([keys] if keys else [])])


def screen(
    screen_name: str,
    language: str,
    *,
    options: Sequence[str] = (),
    accepts_input: bool = False,
    **values: str,
) -> Screen:
    """Build a screen from the text table (an unknown language falls back to English)."""
    texts = TEXTS[screen_name]
    lines = tuple(line.format(**values) for line in texts.get(language, texts["en"]))
    return Screen(screen_name, language, lines, tuple(options), dict(values), accepts_input)


def _label(option: str, language: str) -> str:
    table = MENU_LABELS.get(option) or KEY_LABELS.get(option)
    if table is None:  # a fast amount, in currency units: shown as money
        return format_amount(int(option) * 100, language) if option.isdigit() else option
    return table.get(language, table["en"])
