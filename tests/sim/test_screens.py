"""The ATM's screens as the customer reads them (issue 20): every screen with its keys, in
Chinese, shows no English word but the fascia's key letters and the English button on the
language screen; keys select options by letter only. Method: render every screen of the text
table with every option the firmware offers."""

from __future__ import annotations

import re

from terminals.atm.screens import MENU_LABELS, TEXTS, screen

OPTION_SETS = (tuple(MENU_LABELS), ("100", "300", "cancel"), ("yes", "no"), ("ok", "cancel"),
               ("add_more", "confirm", "cancel"), ("confirm", "cancel"))
VALUES = {"amount": "500.00元", "rejected": "1", "payee": "王", "account": "6222",
          "ledger": "1.00元", "available": "1.00元", "code": "51", "text": "余额不足"}


def test_chinese_screens_carry_no_english_words() -> None:
    for name in TEXTS:
        if name in ("language", "welcome"):
            continue  # shown before the customer chose: both languages, on purpose
        for options in OPTION_SETS:
            shown = screen(name, "zh", options=options, **VALUES).render()
            words = re.findall(r"\b[A-Za-z]{2,}\b", shown)
            assert not words, (name, options, shown)


def test_keys_are_letters_and_select_by_letter_only() -> None:
    menu = screen("menu", "zh", options=tuple(MENU_LABELS))
    assert menu.render().splitlines()[-1].startswith("[A] 取款  [B] 存款")
    assert menu.option_for("b") == "deposit" and menu.option_for("B") == "deposit"
    assert menu.option_for("deposit") is None and menu.option_for("Z") is None
    assert screen("withdrawal_amount", "en", options=("100", "cancel")).render().endswith(
        "[A] CNY 100.00  [B] Cancel")
    welcome = screen("welcome", "en").render()
    assert "Welcome" in welcome and "欢迎" in welcome
