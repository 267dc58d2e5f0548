"""Condition monitoring: metric sources, thresholds, composite rules and the alert lifecycle."""
