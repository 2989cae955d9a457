"""Background housekeeping that keeps the spec's promises when nobody asks again:

* spec 5.2: expired holds are resolved together with their message (withdrawal captured as
  presumed dispensed, deposit released; both flagged for reconciliation);
* spec 5.6: a 0200 claim left pending (its process died, or PostgreSQL failed while it
  answered ``91``) is resolved as ``91`` and its hold released by key (the ledger voids the
  key, so a hold call still in flight cannot take effect later);
* spec 5.5: answered keys older than the retention (at least 48 hours) are deleted.

Safe with several switch processes: the ledger sweep uses ``SKIP LOCKED`` and a stale claim is
taken over by exactly one process.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import trio

from ledger_adapter import InvariantViolation, LedgerError
from switch.authorization import store
from switch.authorization.context import AuthContext
from switch.authorization.request import MessageKey
from switch.db.runtime import DatabaseUnavailable

log = logging.getLogger(__name__)

# Work per pass is bounded so one pass never runs for long.
stale_claims_per_pass_max = 200
# Expired holds resolved per transaction (each call locks what it resolves).
expired_per_call_max = 500


async def sweep_once(ctx: AuthContext) -> dict[str, int]:
    """One pass; returns counts for logs and tests."""
    now = ctx.clock()
    # The switch's own holds first, each with its message (presumed_captured / released),
    # then whatever other holds the ledger has.
    expired = await sweep_expired_messages(ctx, now)
    expired += await ctx.ledger.sweep_expired(now)
    stale_before = now - dt.timedelta(seconds=ctx.stale_after_s)
    resolved = 0
    for key in await store.stale_pending(ctx.db, stale_before, stale_claims_per_pass_max):
        if not await store.take_over_stale(ctx.db, key, stale_before):
            continue
        if key.message_class == "0200":
            await store.finish(ctx.db, key, response_code="91", response_fields=None)
            await ctx.ledger.release_by_key(_hold_key(ctx, key))
            resolved += 1
        # a stale advice stays pending: its repeat redoes it (its ledger keys make that safe)
    cutoff = now - dt.timedelta(hours=max(48, ctx.config.idempotency_retention_h))
    purged = await store.purge_older_than(ctx.db, cutoff)
    return {"expired_holds": expired, "stale_resolved": resolved, "purged": purged}


async def sweep_expired_messages(ctx: AuthContext, now: dt.datetime) -> int:
    """Resolve expired holds of approved 0200s with their message state (auth_sweep_expired)."""
    total = 0
    while True:
        swept = int(await ctx.db.fetchval("SELECT auth_sweep_expired($1, $2)", now,
                                          expired_per_call_max))
        total += swept
        if swept < expired_per_call_max:
            return total


def _hold_key(ctx: AuthContext, key: MessageKey) -> str:
    return ctx.hold_key(key.terminal_id, key.stan, key.transmission_dt, key.acquirer_id)


async def run_sweeper(
    ctx: AuthContext,
    *,
    retry_voids: Callable[[], Awaitable[int]] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Sweep every ``sweep_interval_s`` forever; PostgreSQL outages are waited out.

    ``retry_voids`` records the ``91``s whose void could not reach PostgreSQL (spec 5.6): it
    runs before the hold expiry sweep, so a voided hold is released, never presumed dispensed.
    """
    task_status.started()
    while True:
        try:
            voided = await retry_voids() if retry_voids is not None else 0
            counts = await sweep_once(ctx)
            counts["voids_retried"] = voided
            if any(counts.values()):
                log.info("authorization sweep", extra={"counts": counts})
        except InvariantViolation:
            raise  # a broken money invariant stops the process (the core treats it as fatal)
        except (DatabaseUnavailable, LedgerError) as exc:
            log.warning("authorization sweep skipped: %s", type(exc).__name__)
        except Exception:  # a failing pass must not take the switch down; the next one retries
            log.exception("authorization sweep failed")
        await trio.sleep(ctx.config.sweep_interval_s)
