"""The package's shape (docs/design.md, "one house, named rooms"), read from its imports."""
import ast
from pathlib import Path

from shared_paths import REPO

PACKAGE = REPO / "n3cli"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each n3cli module and the n3cli modules it imports (anywhere in it, lazily too)."""
    out: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        mod = _module(path)
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        found = out.setdefault(mod, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:  # `from . import zoo` imports the module n3cli.zoo
                    sub = f"{target}.{alias.name}"
                    is_mod = (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() or \
                        (PACKAGE.parent / Path(*sub.split(".")) / "__init__.py").exists()
                    found.add(sub if is_mod else target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        out[mod] = {m for m in found if m == "n3cli" or m.startswith("n3cli.")}
    return out


def _room(mod: str) -> str:
    return mod.split(".")[1] if mod.count(".") >= 1 else "n3cli"


def test_rooms_import_one_way():
    """The rooms' import graph has no cycle: each room only uses rooms below it."""
    graph: dict[str, set[str]] = {}
    for mod, targets in _imports().items():
        for t in targets:
            if _room(mod) != _room(t) and _room(t) != "n3cli":  # `from n3cli import __version__` is fine
                graph.setdefault(_room(mod), set()).add(_room(t))
    state: dict[str, int] = {}

    def visit(room: str, path: list[str]) -> None:
        state[room] = 1
        for nxt in sorted(graph.get(room, ())):
            assert state.get(nxt) != 1, f"import cycle between rooms: {' -> '.join(path + [room, nxt])}"
            if nxt not in state:
                visit(nxt, path + [room])
        state[room] = 2

    for room in sorted(graph):
        if room not in state:
            visit(room, [])


def test_the_cli_goes_through_the_api():
    """`cli/` may import `api`, `errors` and its own modules (and the package version), nothing else:
    whatever a command does, a Python user can do with `n3cli.api`."""
    allowed = ("n3cli", "n3cli.api", "n3cli.errors")
    bad = {mod: sorted(t for t in targets if t not in allowed and not t.startswith("n3cli.cli"))
           for mod, targets in _imports().items() if mod.startswith("n3cli.cli")}
    assert not {m: b for m, b in bad.items() if b}, bad


def test_models_imaging_and_tiling_know_no_files_and_no_cli():
    """The arithmetic rooms import only each other and the errors: no files, no runtime, no CLI."""
    pure = ("n3cli.models", "n3cli.imaging", "n3cli.tiling")
    allowed = pure + ("n3cli.errors",)
    for mod, targets in _imports().items():
        if mod.startswith(pure):
            wrong = sorted(t for t in targets if not t.startswith(allowed))
            assert not wrong, f"{mod} imports {wrong}"


def test_every_package_is_installed():
    """pyproject.toml lists the packages a `pip install .` copies: a room missing there works in a
    checkout and fails on every fresh install (it happened with api/)."""
    import re

    text = (PACKAGE.parent / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(n3cli(?:\.\w+)*)"', re.search(r"packages = \[(.*?)\]", text, re.S).group(1)))
    present = {_module(p) for p in PACKAGE.rglob("__init__.py")}
    assert present <= listed, f"not in pyproject.toml's packages: {sorted(present - listed)}"
