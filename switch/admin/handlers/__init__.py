"""Admin API handlers, one module per area; each reuses the functions behind the CLI."""
