"""Compliance: rule packs the engine enforces on every contact."""

from simulator.compliance.packs import PACKS, RulePack, Verdict
from simulator.compliance.rules import ContactLog, Context, Rule

__all__ = ["PACKS", "ContactLog", "Context", "Rule", "RulePack", "Verdict"]
