"""terminals/drivers package."""
