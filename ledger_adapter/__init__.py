"""ledger_adapter package."""
