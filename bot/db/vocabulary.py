"""The closed sets the store accepts: task queues, signal kinds and sources, consent changes.

Defined once here, below every writer, so a flow, a handler or an import cannot name what the store refuses.
"""

from __future__ import annotations

__all__ = ["CONSENT_CHANGES", "QUEUES", "SIGNAL_KINDS", "SIGNAL_SOURCES"]

QUEUES: tuple[str, ...] = ("urgent_clinical", "clinical", "refill", "financial", "general")

SIGNAL_KINDS: frozenset[str] = frozenset(
    {
        "refill_confirmed",
        "refill_declined",
        "missed_dose",
        "side_effect",
        "copay_barrier",
        "consent_change",
        "pdc_below_threshold",
        "primary_abandonment",
        "secondary_abandonment",
        "unreachable",
        "pickup_scheduled",
        "patient_declined",
        "delivery_issue",
    }
)
SIGNAL_SOURCES: frozenset[str] = frozenset({"patient", "computed", "staff", "provider"})
CONSENT_CHANGES: frozenset[str] = frozenset({"opt_out", "opt_in", "detailed_yes", "detailed_no"})
