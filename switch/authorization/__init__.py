"""switch/authorization package."""
