"""switch/protocol package."""
