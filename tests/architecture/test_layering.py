"""The structure DESIGN.md promises, checked on the source: layering, no import cycles, one write path.

Every import counts — module level, inside functions, and under ``TYPE_CHECKING`` — because a function-local
import that closes a cycle is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "conversations", "scheduler", "integrations")
# Models whose rows carry an invariant: only bot/db writes them.
GUARDED_MODELS = {"Task", "TaskNote", "AuditEvent", "Signal", "ConsentEvent"}
GUARDED_COLUMNS = {"opted_out_at", "detailed_consent", "sms_consent"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not MODULES[module].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> Iterator[str]:
    """Every project module ``module`` imports (an imported name that is a submodule counts as that module)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            names = [f"{target}.{alias.name}" for alias in node.names] + [target]
        else:
            continue
        for name in names:
            # The longest prefix that is a project module.
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in MODULES:
                    if candidate != module:
                        yield candidate
                    break


GRAPH = {module: set(_imports(module)) for module in MODULES}


def _layer_of(module: str) -> str:
    return module.split(".")[0]


def test_the_source_tree_is_read() -> None:
    assert {"bot.db.tasks", "bot.sms.handling", "scheduler.dispatcher", "conversations.engine"} <= set(
        MODULES
    )


def test_lower_layers_import_only_the_store_and_the_clock_from_bot() -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _layer_of(module) in ("scheduler", "integrations")
        for target in targets
        if _layer_of(target) == "bot"
        and not (target == "bot.db" or target.startswith("bot.db.") or target == "bot.clock")
    )
    assert wrong == []


def test_the_store_imports_nothing_above_it() -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module == "bot.db" or module.startswith("bot.db.")
        for target in targets
        if _layer_of(target) in ("scheduler", "integrations")
        or (_layer_of(target) == "bot" and not (target == "bot.db" or target.startswith("bot.db.")))
    )
    assert wrong == []


def test_conversations_is_pure() -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _layer_of(module) == "conversations"
        for target in targets
        if _layer_of(target) != "conversations"
    )
    assert wrong == []
    for module, path in MODULES.items():
        if _layer_of(module) == "conversations":
            text = path.read_text(encoding="utf-8")
            for banned in (
                "import aiohttp",
                "import sqlalchemy",
                "from sqlalchemy",
                "from aiohttp",
                "twilio",
            ):
                assert banned not in text, (module, banned)


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its own submodules is not a cycle between modules.
    for module, targets in GRAPH.items():
        if MODULES[module].name == "__init__.py":
            targets.difference_update({t for t in targets if t.startswith(module + ".")})
    assert _cycle() is None


def _writes(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name in GUARDED_MODELS:
                yield f"{name}(...) at line {node.lineno}"
            if name in ("insert", "update", "delete") and node.args:
                arg = node.args[0]
                target = arg.id if isinstance(arg, ast.Name) else ""
                if target in GUARDED_MODELS:
                    yield f"{name}({target}) at line {node.lineno}"
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = [t for t in node.targets]
            targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr in GUARDED_COLUMNS:
                yield f".{target.attr} = at line {node.lineno}"


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if not (m == "bot.db" or m.startswith("bot.db.")))
)
def test_only_the_store_writes_tasks_audit_signals_and_consent(module: str) -> None:
    assert list(_writes(MODULES[module])) == []


def test_exactly_one_scheduler_is_built_in_product_code() -> None:
    built = [
        module
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == "AsyncIOScheduler"
    ]
    assert built == ["bot.jobs"]
