"""Schedules: one-time and recurring messages and agent tasks, cron or natural language, DST-correct."""
