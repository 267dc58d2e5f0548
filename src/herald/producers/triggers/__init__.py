"""Triggers and signed inbound webhooks: event sources that render a task and invoke an agent or send."""
