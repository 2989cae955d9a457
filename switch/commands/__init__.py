"""Sub-commands of the ``atm-switch`` CLI, one module each."""
