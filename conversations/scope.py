"""What a topic-scoped opt-out is about ("stop sending me the copay stuff"): the program kind it names."""

from __future__ import annotations

import re

from conversations.normalize import Normalized

__all__ = ["SCOPES", "optout_scope"]

# (program kind, words naming that kind of text). The first that matches wins; most messages name none.
SCOPES: tuple[tuple[str, str], ...] = (
    (
        "copay_assistance",
        r"\b(?:copay\w*|co pay\w*|copago\w*|cost|costs|price|bill|billing|financial|assistance|grant|foundation"
        r"|coupon\w*|cupon\w*|ayuda (?:con|para) (?:el|los) (?:pago|costo)\w*|pagos?|costos?)\b",
    ),
    (
        "side_effect_checkin",
        r"\b(?:check ?ins?|checkups?|side effects? (?:texts?|messages?|questions?|surveys?)|surveys?"
        r"|how (?:im|i am) (?:doing|feeling)|symptom\w*|encuestas?|como me siento|efectos secundarios)\b",
    ),
    (
        "refill_reminder",
        r"\b(?:refills?|refill reminders?|resurt\w*|pick ?up reminders?|reorder\w*|el refill)\b",
    ),
    ("new_start", r"\b(?:new start|welcome|bienvenida|getting started)\b"),
    ("abandonment_recovery", r"\b(?:not picked up|ready (?:for|to) pick ?up|sin recoger|no recogid\w*)\b"),
)
_SCOPES = tuple((kind, re.compile(pattern)) for kind, pattern in SCOPES)
# Everything, said outright: no scope even if a program's words appear too ("stop all texts about the copay").
_ALL = re.compile(r"\b(?:all|any|every|everything|todos?|todas?|ningun\w*|nada)\b")


def optout_scope(norm: Normalized) -> str | None:
    """The program kind an opt-out is limited to, or None for "stop everything".

    The intent stays ``opt_out`` (LABELS.md); the scope is carried in ``values["optout_scope"]`` so that the
    channel may stop only that program later. Consent law treats any revocation as total until the bot layer
    decides otherwise, so callers that ignore the scope stop everything.
    """
    text = norm.text
    if _ALL.search(text):
        return None
    for kind, pattern in _SCOPES:
        if pattern.search(text):
            return kind
    return None
