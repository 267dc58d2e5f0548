"""Outgoing events: subscriptions, fan-out from the events table, signed deliveries with retries."""
