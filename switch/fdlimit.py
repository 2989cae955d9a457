"""Raise the process's open-file limit so ``server.connections_max`` can be reached.

Each terminal connection is a file descriptor; the default soft limit (often 1,024)
would refuse connections long before the configured maximum. The soft limit is raised
towards ``connections_max`` + a margin for PostgreSQL, log and listener descriptors,
never beyond the hard limit (raising that needs privileges; operators set it with
systemd ``LimitNOFILE=`` or ``ulimit -Hn``).
"""

from __future__ import annotations

import resource

# Descriptors besides terminal connections: listeners, the pool, pgserver, logs.
descriptors_reserved = 256


def raise_open_file_limit(connections_max: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE if it is below what is needed; return (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections_max + descriptors_reserved
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft, hard
