"""`atm-switch demo --interactive` as a person uses it: the command runs in a real
pseudo-terminal (os.openpty, the pty its controlling terminal, as a login shell would have it),
and this test reads the screens and types keys: a stripe withdrawal in English, then the lost
card in Chinese (retained), then quit. The PIN must not be echoed; the summary must show the
ledger moved by exactly the withdrawal. Keys are the fascia's letters with labels in the
customer's language (issue 20: no English option names on a Chinese screen), and the welcome
screen is in both languages."""

from __future__ import annotations

import codecs
import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning")


class PtyProcess:
    """A child on a pty: ``expect`` text, ``send`` a line (a small pexpect)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()

        def controlling_terminal() -> None:  # runs in the child, stdin already the pty
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                        env=env, preexec_fn=controlling_terminal)
        os.close(slave)
        self.master = master
        self.output = ""
        self.position = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def expect(self, text: str, timeout: float = 60.0) -> str:
        """Wait for ``text`` after the last match; return what came before it."""
        deadline = time.monotonic() + timeout
        while (found := self.output.find(text, self.position)) < 0:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.master], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError(f"no {text!r} within {timeout} s; screen so far:\n"
                                     f"{self.output[-3000:]}")
            try:
                data = os.read(self.master, 65536)
            except OSError:
                data = b""
            if not data:
                raise AssertionError(f"the demo ended before {text!r}:\n{self.output[-3000:]}")
            self.output += self._decoder.decode(data)
        before = self.output[self.position : found]
        self.position = found + len(text)
        return before

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def close(self) -> int:
        try:
            return self.process.wait(timeout=60)
        finally:
            os.close(self.master)


def test_interactive_demo_through_a_pty(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = PtyProcess([sys.executable, "-m", "switch.cli", "demo", "--interactive",
                        "--data-dir", str(tmp_path / "demo")], env)
    try:
        menu = child.expect("card> ", timeout=120)
        assert "6228480000000000017  stripe PIN 1234" in menu
        assert "Welcome" in menu and "欢迎" in menu and "请插入银行卡" in menu  # the idle screen
        child.send("1")
        child.expect("Please choose your language")
        assert "[A] English  [B] 中文" in child.expect("> ")
        child.send("withdrawal")  # an option's name is not a key
        child.expect("press one of the keys A, B")
        child.send("a")
        child.expect("PIN: ")
        child.send("1234")
        assert "1234" not in child.expect("Please choose a service")  # not echoed
        assert "[A] Withdrawal  [B] Deposit" in child.expect("> ")
        child.send("A")
        assert "[A] CNY 100.00" in child.expect("> ")  # fast amounts as money
        child.send("500")  # or typed, in yuan
        child.expect("Would you like another service?")
        assert "[A] Yes  [B] No" in child.expect("> ")
        child.send("B")
        child.expect("Please take your card")
        child.expect("card> ")
        child.send("2")
        child.expect("> ")
        child.send("B")  # 中文
        child.expect("PIN: ")
        child.send("1234")
        menu = child.expect("> ")
        assert "[A] 取款  [B] 存款  [C] 转账  [D] 查询余额" in menu, menu
        assert "balance" not in menu and "withdrawal" not in menu
        child.send("d")
        child.expect("您的银行卡已被吞卡")
        child.expect("card> ")
        child.send("q")
        summary = child.expect("account DEMO-WANG: ledger CNY 10,000.00 -> CNY 9,500.00")
        assert "withdrawal:00" in summary and "balance:41; card retained" in summary
    finally:
        if child.process.poll() is None:
            child.send("q")
        code = child.close()
    assert code == 0, child.output[-3000:]
