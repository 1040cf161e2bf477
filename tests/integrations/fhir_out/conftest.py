"""Fixtures for the FHIR output tests: the same seeded store the sink tests use."""

from __future__ import annotations

from tests.integrations.sinks.conftest import fake_sleep, maker  # noqa: F401  (re-exported fixtures)
