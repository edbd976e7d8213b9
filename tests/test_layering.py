"""Imports go down only: every module of the package sits in a layer, and may import only
modules of lower layers, function-local imports included. So the models never reach up into
evaluation, plots or the CLIs, and no two modules import each other around a circle."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gan_vae_tf"

# Top to bottom. A module may import only modules in the layers below its own.
LAYERS: list[tuple[str, ...]] = [
    ("",),  # gan_vae_tf/__init__.py: `gan_vae_tf.load` opens a run (imported when called)
    ("train", "evaluate", "report", "board", "generate", "export"),  # command-line tools
    ("training", "trained"),  # what `train` runs; a trained run in Python
    ("kinds",),  # the only module that knows which kinds of model exist
    ("evaluation", "callbacks", "checkpoint", "diagrams"),
    ("models",),  # the package's face: re-exports the modules below
    ("models.dcgan", "models.vae"),
    ("models.base",),
    ("models.optimizers", "models.conditioning"),
    ("networks", "data", "quality", "plots"),
    ("losses", "layers", "classifier", "imagefolder", "idx", "metrics"),
    ("config", "rundir", "precision", "distribute", "console"),
    ("errors",),
]


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by its name inside it ("models.vae"; "" for __init__)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _inner(module: str) -> str | None:
    """ "gan_vae_tf.models.vae" -> "models.vae"; None for a module outside the package."""
    if module == "gan_vae_tf":
        return ""
    return module.removeprefix("gan_vae_tf.") if module.startswith("gan_vae_tf.") else None


def imports_of(source: str, package: str, known: set[str]) -> set[str]:
    """The package modules `source` imports anywhere in it, function-local imports included.
    `package` is the package the source's module is in ("models" for models/vae.py, "" for
    a top-level module), for relative imports. `from gan_vae_tf.models import DCGAN` imports
    `models`; `from gan_vae_tf.models import optimizers` imports `models.optimizers`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {_inner(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(["gan_vae_tf", *filter(None, base), *filter(None, [node.module])])
            else:
                module = node.module or ""
            for alias in node.names:
                sub = _inner(f"{module}.{alias.name}")
                found.add(sub if sub in known else _inner(module))
    return {name for name in found if name is not None and name in known}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(package)
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        inside = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = imports_of(path.read_text(), inside, known) - {name}
    return graph


def upward_imports(graph: dict[str, set[str]], layers: list[tuple[str, ...]]) -> list[str]:
    """Every import of a module in its own layer or above, as "a -> b" lines."""
    level = {name: i for i, layer in enumerate(layers) for name in layer}
    return sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        for target in targets
        if level[target] <= level[name]
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of the graph (each found once, from the depth-first search)."""
    found, state = [], {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                found.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_every_module_has_a_layer_and_every_layer_a_module():
    listed = [name for layer in LAYERS for name in layer]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(module_names())


# What the models may import besides each other: the issue that made them a package named it.
MODELS_MAY_IMPORT = {"losses", "layers", "networks", "config"}


def test_the_models_import_only_losses_layers_networks_and_config():
    graph = import_graph()
    models = [name for name in graph if name == "models" or name.startswith("models.")]
    outside = {
        f"{name} -> {target}"
        for name in models
        for target in graph[name]
        if target not in MODELS_MAY_IMPORT
        and target != "models"
        and not target.startswith("models.")
    }
    assert len(models) == 6 and outside == set()


def test_imports_go_down_only_and_around_no_circle():
    graph = import_graph()
    assert upward_imports(graph, LAYERS) == []
    assert circles(graph) == []


def test_the_check_finds_a_function_local_import_that_goes_up(tmp_path):
    """The same check on a copy of the package with one planted import: the models asking
    `evaluation` for a metric inside a method, as they once did."""
    copy = tmp_path / "gan_vae_tf"
    for path in module_names().values():
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    vae = copy / "models" / "vae.py"
    vae.write_text(
        vae.read_text() + "\n\ndef planted(model):\n    from gan_vae_tf import evaluation\n"
    )
    assert upward_imports(import_graph(copy), LAYERS) == ["models.vae -> evaluation"]


def test_circles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from gan_vae_tf.models import DCGAN", {"models"}),
        ("from gan_vae_tf.models import optimizers", {"models.optimizers"}),
        ("from gan_vae_tf import config as config_lib, data", {"config", "data"}),
        ("import gan_vae_tf.models.base", {"models.base"}),
        ("def f():\n    from gan_vae_tf import plots", {"plots"}),
        ("from .base import MultiOptimizerModel", {"models.base"}),
        ("from .. import losses", {"losses"}),
        ("import numpy\nfrom keras import ops", set()),
    ],
)
def test_imports_are_read_as_the_modules_they_load(source, expected):
    assert imports_of(source, "models", set(module_names())) == expected


def test_importing_the_models_loads_nothing_above_them():
    code = (
        "import sys, gan_vae_tf.models\n"
        "print(' '.join(m for m in sys.modules if m.startswith('gan_vae_tf')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    inside = {m.removeprefix("gan_vae_tf").removeprefix(".") for m in loaded}
    assert "models.vae" in inside
    allowed = MODELS_MAY_IMPORT | {"", "errors"}  # the package, and what config imports
    assert {m for m in inside if not m.startswith("models")} <= allowed
    for above in ("evaluate", "evaluation", "plots", "data", "report", "train", "kinds"):
        assert above not in inside
