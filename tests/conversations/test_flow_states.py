"""Every state a flow can open is declared in its module's ``STATES`` (the dialog crawl enumerates them)."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest

from conversations.flows import FLOWS, abandonment, checkin, copay, free_text, new_start, refill

MODULES: tuple[ModuleType, ...] = (refill, checkin, copay, new_start, abandonment, free_text)


def _opened(tree: ast.AST) -> set[str]:
    """States passed to ``new_state(FLOW, "<state>", ...)``: the only way a flow opens a step."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "new_state":
            step = node.args[1] if len(node.args) > 1 else None
            assert isinstance(step, ast.Constant) and isinstance(step.value, str), ast.dump(node)
            found.add(step.value)
    return found


def _tested(tree: ast.AST) -> set[str]:
    """States a flow compares ``state.state`` with (a branch for a state must be for a declared one)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Attribute)
            and node.left.attr == "state"
        ):
            found |= {str(c.value) for c in node.comparators if isinstance(c, ast.Constant)}
    return found


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_every_state_a_flow_opens_is_declared(module: ModuleType) -> None:
    tree = ast.parse(inspect.getsource(module))
    opened, tested = _opened(tree), _tested(tree)
    assert opened == set(module.STATES), f"{module.__name__}: opens {opened}, declares {module.STATES}"
    assert tested <= set(module.STATES), f"{module.__name__}: branches on undeclared {tested}"
    assert len(set(module.STATES)) == len(module.STATES)


def test_the_registry_carries_each_flows_states() -> None:
    assert {spec.name: spec.states for spec in FLOWS.values()} == {m.FLOW: m.STATES for m in MODULES}
