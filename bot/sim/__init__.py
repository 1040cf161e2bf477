"""What-if simulation: a site's patients through the real outreach and dialog path on a simulated clock.

``bot.sim.engine`` runs it (``Simulation``, ``SimSpec``), ``bot.sim.behaviour`` says how patients answer,
``bot.sim.report`` and ``bot.sim.html`` turn the store it wrote into figures. Only the light part is imported
here, so a command line that merely parses ``--rates`` does not load the dialog engine.
"""

from bot.sim.behaviour import Rates

__all__ = ["Rates"]
