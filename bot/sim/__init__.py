"""What-if simulation: a site's patients through the real outreach and dialog path on a simulated clock."""

from bot.sim.behaviour import Rates
from bot.sim.engine import SimSpec, SimStats, Simulation

__all__ = ["Rates", "SimSpec", "SimStats", "Simulation"]
