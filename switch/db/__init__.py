"""switch/db package."""
