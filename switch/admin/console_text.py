"""The console's words in English and Chinese (like the ATM's screens): one table, checked
complete when the module loads so a page never shows a missing label."""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("en", "zh")

TEXT: Final[dict[str, tuple[str, str]]] = {
    "title": ("ATM switch back office", "ATM 交换后台"),
    "login": ("Log in", "登录"),
    "logout": ("Log out", "退出"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "dashboard": ("Today", "今日概况"),
    "terminals": ("Terminals", "终端"),
    "cards": ("Cards", "银行卡"),
    "accounts": ("Accounts", "账户"),
    "transactions": ("Transactions", "交易"),
    "audit": ("Audit log", "审计日志"),
    "keys": ("Keys", "密钥"),
    "approvals": ("Approvals", "审批"),
    "volume_by_hour": ("Requests by hour (UTC)", "每小时请求数 (UTC)"),
    "response_codes": ("Response codes", "响应码"),
    "requests": ("Requests", "请求数"),
    "find_card": ("Find a card", "查找银行卡"),
    "pan": ("Card number", "卡号"),
    "last4": ("Last four digits", "卡号后四位"),
    "account": ("Account", "账户"),
    "find": ("Find", "查找"),
    "no_rows": ("Nothing to show.", "没有记录。"),
    "block": ("Block", "冻结卡"),
    "unblock": ("Unblock", "解冻卡"),
    "reset-tries": ("Reset PIN tries", "重置密码次数"),
    "lost": ("Lost", "挂失"),
    "stolen": ("Stolen", "被盗"),
    "close": ("Close", "销卡"),
    "enable": ("Enable", "启用"),
    "disable": ("Disable", "停用"),
    "freeze": ("Freeze", "冻结账户"),
    "unfreeze": ("Unfreeze", "解冻账户"),
    "approve": ("Approve", "批准"),
    "reject": ("Reject", "拒绝"),
    "show": ("Show", "查看"),
    "done": ("Done.", "已完成。"),
    "pending_approval": ("Waiting for a second person's approval.", "等待第二人审批。"),
    "error": ("Refused", "操作被拒绝"),
    "language": ("中文", "English"),
    "signed_in_as": ("Signed in as", "当前用户"),
    "date": ("Date", "日期"),
    "terminal": ("Terminal", "终端"),
    "search": ("Search", "搜索"),
    "custody": ("My key components", "我的密钥分量"),
    "users": ("Users", "用户"),
    "role": ("Role", "角色"),
    "create": ("Create", "创建"),
    "add_terminal": ("Add a terminal", "添加终端"),
    "rotate_tmk": ("New master key (dual control)", "更换主密钥（双人控制）"),
    "custodian": ("Custodian", "保管人"),
    "collect": ("Collect", "领取"),
    "component_once": ("Write this component down now: it is shown once.",
                       "请立即记录此分量：仅显示一次。"),
}

for _key, (_en, _zh) in TEXT.items():
    if not _en or not _zh:
        raise RuntimeError(f"console text {_key!r} lacks a language")


def texts(language: str) -> dict[str, str]:
    index = LANGUAGES.index(language) if language in LANGUAGES else 0
    return {key: pair[index] for key, pair in TEXT.items()}
