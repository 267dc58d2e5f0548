"""Delivery policy: recipient forms, priority routing, fallback chains, quiet hours."""
