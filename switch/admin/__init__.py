"""Back office: the admin API, the web console, staff users, roles, sessions, audit, dual control.

It runs as its own process (``atm-switch admin``, see docs/admin.md) on the same ASGI stack as
the ops endpoint (:mod:`ops.asgi`), and changes cards, accounts and terminals only through the
functions behind the CLI, so the switch sees every change through its usual tables.
"""
