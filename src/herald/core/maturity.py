"""An agent's maturity level: what it may do on its own (governance decides from it)."""

from __future__ import annotations

from enum import StrEnum


class MaturityLevel(StrEnum):
    STUDENT = "STUDENT"
    INTERN = "INTERN"
    SUPERVISED = "SUPERVISED"
    AUTONOMOUS = "AUTONOMOUS"
