"""The closed sets the store accepts (defined once in ``conversations.vocabulary``, re-exported here)."""

from __future__ import annotations

from conversations.vocabulary import CONSENT_CHANGES, QUEUES, SIGNAL_KINDS, SIGNAL_LABELS, SIGNAL_SOURCES

__all__ = ["CONSENT_CHANGES", "QUEUES", "SIGNAL_KINDS", "SIGNAL_LABELS", "SIGNAL_SOURCES"]
