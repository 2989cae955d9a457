"""Sans-I/O protocol modules for the ATM's serial devices.

Each module is shared by the host-side driver (`terminals.drivers`) and the device-side emulator
(`terminals.emulators`): bytes in, events out, like h11. Nothing here touches a file descriptor.
"""
