"""The interfaces people and programs use: the REST API and the dashboard (and, later, MCP)."""
