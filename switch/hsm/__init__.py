"""switch/hsm package."""
