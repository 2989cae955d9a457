"""Scripted ATM sessions: the TOML scenario format (``loader``), the scripted customer
(``customer``) and the runner that plays a scenario against a switch (``runner``).
Bundled examples live in ``examples/`` (see docs/simulator.md)."""
