"""The local Twilio-compatible simulator: Messages API subset, signed webhooks, a handset page."""

from __future__ import annotations

from integrations.twilio.simulator.app import SimulatorConfig, create_simulator_app, start_simulator

__all__ = ["SimulatorConfig", "create_simulator_app", "start_simulator"]
