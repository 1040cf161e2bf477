"""The closed sets every layer shares: task queues, signal kinds (with their labels), signal sources, consent
changes. Defined once, here at the bottom, so a flow cannot emit what the store refuses, and the store, the
API schemas, the FHIR mapping and the docs all read the same names.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["CONSENT_CHANGES", "QUEUES", "SIGNAL_KINDS", "SIGNAL_LABELS", "SIGNAL_SOURCES", "Queue"]

Queue = Literal["urgent_clinical", "clinical", "refill", "financial", "general"]
QUEUES: tuple[str, ...] = get_args(Queue)

# Signal kind -> a label for people (FHIR Observation/Flag text, exports, docs).
SIGNAL_LABELS: dict[str, str] = {
    "refill_confirmed": "Refill confirmed by patient",
    "refill_declined": "Refill declined by patient",
    "refill_deferred": "Refill put off: the patient still has supply",
    "missed_dose": "Doses missed in the last 7 days",
    "side_effect": "Patient-reported symptoms",
    "checkin_unanswered": "Side-effect check-in not answered",
    "copay_barrier": "Cost barrier reported",
    "copay_help_declined": "Copay assistance offer declined",
    "consent_change": "SMS consent changed",
    "pdc_below_threshold": "Proportion of days covered",
    "primary_abandonment": "Risk of primary abandonment: new prescription not filled",
    "secondary_abandonment": "Risk of secondary abandonment: refill overdue after run-out",
    "unreachable": "Patient unreachable by SMS",
    "pickup_scheduled": "Pickup or delivery scheduled",
    "patient_declined": "Patient declined therapy",
    "delivery_issue": "Delivery issue reported",
}
SIGNAL_KINDS: frozenset[str] = frozenset(SIGNAL_LABELS)
SIGNAL_SOURCES: frozenset[str] = frozenset({"patient", "computed", "staff", "provider"})
CONSENT_CHANGES: frozenset[str] = frozenset({"opt_out", "opt_in", "detailed_yes", "detailed_no"})
