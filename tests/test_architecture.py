"""Imports flow one way: every tfllm package imports only the floors below it (docs/architecture.md)."""

import ast
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(REPO_ROOT, "tfllm")

# Which tfllm packages each package may import, besides itself and the
# one-file utilities (`tfllm._files`, `tfllm._validation`, `tfllm._ops`).
# Floors, bottom up: layers, text, metrics, data and generation (decoding)
# stand alone; models build on layers and decoding; training and serving on
# the bottom floor; tasks on everything below; compression on tasks; the
# command line on both.
BOTTOM = set()
ALLOWED = {
    "layers": BOTTOM,
    "text": BOTTOM,
    "metrics": BOTTOM,
    "data": BOTTOM,
    "generation": BOTTOM,
    "models": {"layers", "generation", "metrics"},
    "training": {"layers", "text", "metrics", "data"},
    "serving": BOTTOM,
    "tasks": {"layers", "text", "metrics", "data", "generation", "models", "training", "serving"},
    "compression": {"layers", "text", "metrics", "data", "generation", "models", "training", "serving", "tasks"},
    "cli": {"layers", "text", "metrics", "data", "generation", "models", "training", "serving", "tasks", "compression"},
}
UTILITIES = {"_files", "_validation", "_ops"}
# What a client process may load: no model code, no Keras.
CLIENT_MODULE = "tfllm.serving.client"
MODEL_PACKAGES = {"layers", "models", "generation", "tasks", "training"}


def _module_name(path):
    relative = os.path.relpath(path, REPO_ROOT)[: -len(".py")].split(os.sep)
    return ".".join(relative[:-1] if relative[-1] == "__init__" else relative)


def _modules():
    for directory, _, files in os.walk(PACKAGE_DIR):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                yield _module_name(path), path


def _imports(module, path):
    """Every module `path` imports (top level and inside functions), as dotted names."""
    is_package = path.endswith("__init__.py")
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base = parts if is_package else parts[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names.add(prefix)
            # `from tfllm import cli` imports the module tfllm.cli.
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


MODULES = dict(_modules())
IMPORTS = {module: _imports(module, path) for module, path in MODULES.items()}


def _package(dotted):
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "tfllm" else None


def _known(dotted):
    return dotted in MODULES


def upward_imports(imports=IMPORTS):
    """`[(module, imported module)]` for every import the table does not allow."""
    found = []
    for module, names in sorted(imports.items()):
        package = _package(module)
        for name in sorted(names):
            target = _package(name)
            if name.split(".")[0] == "apps":
                found.append((module, name))
            if target is None or target == package or target in UTILITIES or not _known(name):
                continue
            if package is None:  # tfllm/__init__.py imports nothing heavy
                found.append((module, name))
            elif target not in ALLOWED.get(package, set()):
                found.append((module, name))
    return found


def test_every_package_is_in_the_table():
    packages = {_package(module) for module in MODULES} - {None} - UTILITIES
    assert packages == set(ALLOWED), "add new packages to ALLOWED (and docs/architecture.md)"


def test_imports_only_flow_down():
    assert upward_imports() == []


def test_the_serving_client_loads_no_model_code():
    seen, todo, third_party = set(), [CLIENT_MODULE], set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in IMPORTS.get(module, ()):
            if _known(name):
                todo.append(name)
            elif not name.startswith("tfllm"):
                third_party.add(name.split(".")[0])
    assert not {_package(module) for module in seen} & MODEL_PACKAGES, sorted(seen)
    assert "keras" not in third_party and "keras_hub" not in third_party


@pytest.mark.parametrize("importer, imported", [
    ("tfllm.text.word_vectors", "tfllm.models.ngram_classifier"),  # today's main had these three
    ("tfllm.generation.text_to_text", "tfllm.models.transformer_seq2seq"),
    ("tfllm.training.arguments", "tfllm.cli"),
    ("tfllm.serving.client", "tfllm.models"),
    ("tfllm.layers.masks", "apps.sentiment"),
])
def test_the_check_catches_upward_imports(importer, imported):
    known = dict(IMPORTS)
    known[importer] = {imported}
    assert (importer, imported) in upward_imports(known)
