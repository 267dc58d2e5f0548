"""Campaigns: lifecycle messages over a tenant's own database (seed 004), one producer of the pipeline."""
