"""CLI commands, one module per group; each only parses, calls a task function and prints."""
