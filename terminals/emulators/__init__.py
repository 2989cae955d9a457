"""Device-side emulators of the ATM's serial devices, with fault injection from a seeded
schedule (`terminals.emulators.faults`). Each speaks the same sans-I/O protocol module as its
driver, over any `terminals.transport.Transport` (a pty master in the simulator)."""
