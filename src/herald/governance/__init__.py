"""Governance: what an agent of each maturity level may do on its own."""

from herald.governance.policy import Decision, GovernanceCache, MaturityLevel, decide

__all__ = ["Decision", "GovernanceCache", "MaturityLevel", "decide"]
