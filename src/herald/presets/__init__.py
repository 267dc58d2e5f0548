"""Ready-made campaigns: audience SQL, schedule, dedupe and channel policy for a kind of business, per database
dialect, turned into the body of ``POST /api/v1/campaigns``.

A preset is data about a tenant's own database, not part of the pipeline: it sits above every service (the
import-linter layers put it just below the command line), so no producer can come to depend on one. The first
pack is seed 004's power-equipment dealership (:mod:`herald.presets.dealership`), with its demo database
(:mod:`herald.presets.dealership_data`).
"""
