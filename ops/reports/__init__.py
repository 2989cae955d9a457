"""Operations reports over the switch's message records and the ledger (issue 12).

``sources`` holds every SQL read of ``auth_messages`` and the ledger tables, so a schema change
touches one module; ``daily`` and ``reconcile`` are pure functions over what it returns.
"""
