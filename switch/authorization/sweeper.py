"""Background housekeeping that keeps the spec's promises when nobody asks again:

* spec 5.2: expired holds are resolved together with their message (withdrawal captured as
  presumed dispensed, deposit released; both flagged for reconciliation);
* spec 5.6: a claim nobody decided (a card-network request whose process died) is voided
  once it is older than the stale limit (``auth_void_stale_claims``); a network approval
  behind it is then reversed by the network sweep;
* spec 5.5: answered keys older than the retention (at least 48 hours) are deleted.

Safe with several switch processes: the ledger sweep uses ``SKIP LOCKED`` and every message
change takes the message key's lock.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import asyncpg
import trio

from ledger_adapter import InvariantViolation, LedgerError
from switch.authorization.context import AuthContext
from switch.db.runtime import DatabaseUnavailable

log = logging.getLogger(__name__)

# Work per pass is bounded so one pass never runs for long.
stale_claims_per_pass_max = 200
# Owed voids (void_journal.py) are retried this often between sweeps.
void_retry_interval_s = 0.5
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
    resolved = int(await ctx.db.fetchval("SELECT auth_void_stale_claims($1, $2)",
                                         stale_before, stale_claims_per_pass_max))
    cutoff = now - dt.timedelta(hours=max(48, ctx.config.idempotency_retention_h))
    purged = await purge_older_than(ctx, cutoff)
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


async def purge_older_than(ctx: AuthContext, cutoff: dt.datetime) -> int:
    """Spec 5.5: keys are kept at least 48 hours; older decided rows are deleted."""

    async def work(connection: asyncpg.Connection) -> int:
        status = await connection.execute(
            "DELETE FROM auth_messages WHERE state <> 'claimed' AND created_at < $1", cutoff
        )
        await connection.execute("DELETE FROM reversal_markers WHERE created_at < $1", cutoff)
        return int(status.split()[-1])

    result: int = await ctx.db.run(work)
    return result


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
        await _retry_voids_until(trio.current_time() + ctx.config.sweep_interval_s, retry_voids)


async def _retry_voids_until(
    until: float, retry_voids: Callable[[], Awaitable[int]] | None
) -> None:
    """Between sweeps, give owed voids back as soon as PostgreSQL answers again (every
    ``void_retry_interval_s``; nothing to do costs no database call): a hold behind a 91 is
    released within a second of the outage's end, not at the next sweep."""
    while (left := until - trio.current_time()) > 0:
        await trio.sleep(min(void_retry_interval_s, left))
        if retry_voids is None:
            continue
        try:
            await retry_voids()
        except (DatabaseUnavailable, LedgerError):
            pass
        except Exception:  # the sweep retries it; never take the switch down
            log.exception("retrying owed voids failed")
