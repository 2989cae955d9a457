"""Receipts: bilingual (English and Chinese labels on every line), masked PAN, integer amounts.

Built as ``ReceiptLine``s for the ESC/POS driver; the printer emulator parses them back, so tests
read a receipt exactly as a customer would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from terminals.atm.screens import format_amount
from terminals.atm.session import CustomerSession, TransactionRecord
from terminals.devices.printer import Alignment, ReceiptLine

TITLES = {
    "withdrawal": "WITHDRAWAL 取款",
    "deposit": "DEPOSIT 存款",
    "transfer": "TRANSFER 转账",
    "balance": "BALANCE 余额查询",
    "mini_statement": "MINI STATEMENT 迷你对账单",
    "pin_change": "PIN CHANGE 修改密码",
}


def _row(label: str, value: str) -> ReceiptLine:
    return ReceiptLine(f"{label}: {value}")


def receipt_lines(
    header: Sequence[str], terminal_id: str, session: CustomerSession, record: TransactionRecord,
    now: dt.datetime,
) -> list[ReceiptLine]:
    """The receipt of one transaction."""
    lines = [ReceiptLine(text, Alignment.CENTRE, bold=True) for text in header]
    lines += [
        ReceiptLine(TITLES.get(record.type, record.type.upper()), Alignment.CENTRE, bold=True),
        _row("DATE 日期", now.strftime("%Y-%m-%d %H:%M:%S")),
        _row("TERMINAL 终端", terminal_id),
        _row("CARD 卡号", session.masked_pan),
        _row("STAN 流水号", record.stan),
        _row("RRN 参考号", record.rrn),
    ]
    if record.auth_id:
        lines.append(_row("AUTH 授权码", record.auth_id))
    lines += _amount_rows(record)
    if record.payee_account:
        lines.append(_row("PAYEE 收款账号", record.payee_account))
    if record.payee_name:
        lines.append(_row("NAME 收款人", record.payee_name))
    if record.statement is not None:
        lines += _statement_rows(record)
    if record.balances:
        lines.append(_row("AVAILABLE 可用余额", format_amount(record.balances["available"])))
    lines.append(_row("RESULT 结果", _result(record)))
    lines.append(ReceiptLine("THANK YOU 谢谢惠顾", Alignment.CENTRE))
    return lines


def _amount_rows(record: TransactionRecord) -> list[ReceiptLine]:
    if record.type in ("balance", "mini_statement", "pin_change"):
        return []
    rows = [_row("AMOUNT 金额", format_amount(record.amount))]
    if record.dispensed is not None and record.dispensed != record.amount:
        rows.append(_row("DISPENSED 实际出钞", format_amount(record.dispensed)))
    return rows


def _statement_rows(record: TransactionRecord) -> list[ReceiptLine]:
    rows = []
    for line in record.statement or []:
        sign = "+" if line["direction"] == "C" else "-"
        rows.append(ReceiptLine(
            f"{line['date']} {sign}{format_amount(line['amount'])} {line['description']}"))
    return rows


def _result(record: TransactionRecord) -> str:
    if record.outcome == "partial":
        return "PARTIAL 部分出钞"
    if record.response_code == "00":
        return "APPROVED 成功"
    return f"DECLINED 拒绝 {record.response_code or '--'}"
