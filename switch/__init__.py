"""switch package."""
