"""switch/networks package."""
