"""Process limits the load test needs (many sockets per process)."""

from __future__ import annotations

import resource


def raise_open_files_limit(wanted: int | None = None) -> int:
    """Raise the soft RLIMIT_NOFILE to ``wanted`` (default: the hard limit); return it.

    Child processes inherit the raised limit, so raising it before starting the
    switch or the echo server covers them too.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if wanted is None else wanted
    if hard != resource.RLIM_INFINITY:
        target = min(target, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
