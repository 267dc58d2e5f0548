"""Storage: tables, engine and the named SQL for the outbox's hot paths."""
