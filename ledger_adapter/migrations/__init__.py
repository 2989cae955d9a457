"""The ledger's SQL: schema and PL/pgSQL batch functions (migrations 0100-0199, applied by
``switch/db/migrate.py`` in one sequence with the other owners' migrations)."""
