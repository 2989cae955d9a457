"""Answers recorded through the group commit: each caller's own row ends `done` with its own
answer, concurrent callers share round trips, and a lone caller is not held back. Method: claim
real rows in PostgreSQL, finish them concurrently, read them back."""

from __future__ import annotations

import json

import trio

from switch.authorization import store
from switch.authorization.request import MessageKey
from switch.db.runtime import Database


def key(n: int) -> MessageKey:
    return MessageKey("0200", "ATM00001", f"{n:06d}", "1122012345", "12345678")


async def claim(db: Database, n: int) -> None:
    result = await store.claim(
        db, key(n), fingerprint=f"fp{n}", processing_code="011000", amount_minor=100 * n
    )
    assert result.claimed


async def test_concurrent_answers_share_commits_and_keep_their_own_content(db: Database) -> None:
    for n in range(1, 101):
        await claim(db, n)
    recorder = store.AnswerRecorder(db)
    async with trio.open_nursery() as nursery:
        for n in range(1, 101):
            nursery.start_soon(
                lambda n=n: recorder.finish(
                    key(n), response_code="00" if n % 2 else "51",
                    response_fields={"39": "00" if n % 2 else "51", "11": f"{n:06d}"},
                    card_id=n, effect={"hold_id": n} if n % 2 else None,
                )
            )  # fmt: skip
    rows = await db.fetch(
        "SELECT stan, state, response_code, response_fields, card_id, effect FROM auth_messages"
    )
    assert len(rows) == 100
    for row in rows:
        n = int(row["stan"])
        code = "00" if n % 2 else "51"
        assert (row["state"], row["response_code"], row["card_id"]) == ("done", code, n)
        assert json.loads(row["response_fields"]) == {"39": code, "11": row["stan"]}
        assert (json.loads(row["effect"]) if row["effect"] else None) == (
            {"hold_id": n} if n % 2 else None
        )
    committer = recorder._committer
    assert committer.items_sent == 100
    assert committer.batches_sent < 100, "concurrent answers should share round trips"


async def test_a_lone_answer_goes_out_at_once(db: Database) -> None:
    await claim(db, 7)
    recorder = store.AnswerRecorder(db)
    await recorder.finish(key(7), response_code="55", response_fields={"39": "55"})
    record = await store.load_record(db, key(7))
    assert record is not None and record.done and record.response_code == "55"
    assert recorder._committer.batches_sent == 1
