"""The message pipeline: accept (govern, render, route, store), then the worker dispatches the outbox."""
