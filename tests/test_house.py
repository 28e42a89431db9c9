"""The shape the code keeps: short modules, the formatter owning the layout, typed public functions, visible
deprecations."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import facellm

PACKAGE = Path(facellm.__file__).parent
ROOT = PACKAGE.parent.parent
MAX_LINES = 400
MAX_FORMAT_OPT_OUTS = 20
MIN_TYPED_SHARE = 0.9


def python_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in (ROOT / folder).rglob("*.py")]


def public_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Functions and methods a caller may use: module-level or in a public class, not starting with "_"."""
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not child.name.startswith("_"):
                    found.append(child)
            elif isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
                visit(child)
            elif not isinstance(child, ast.ClassDef):
                visit(child)

    visit(tree)
    return found


def fully_typed(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    arguments = function.args
    named = [a for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs if a.arg not in ("self", "cls")]
    starred = [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return function.returns is not None and all(a.annotation is not None for a in named + starred)


def test_no_module_is_over_the_line_limit():
    long = {
        str(p.relative_to(ROOT)): n for p in python_files("src") if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long


def test_the_formatter_owns_the_layout():
    texts = [p.read_text() for p in python_files("src", "tests", "bench")]
    opt_outs = sum(text.count("fmt: skip") + text.count("fmt: off") for text in texts)
    assert opt_outs < MAX_FORMAT_OPT_OUTS


def test_public_functions_are_typed():
    functions = [f for p in python_files("src") for f in public_functions(ast.parse(p.read_text()))]
    typed = sum(fully_typed(f) for f in functions)
    assert len(functions) > 300
    assert typed / len(functions) >= MIN_TYPED_SHARE, f"{typed} of {len(functions)} public functions fully typed"


def test_the_typing_check_sees_a_missing_annotation():
    tree = ast.parse(
        "def a(x: int) -> int: ...\ndef b(x) -> int: ...\ndef c(x: int): ...\nclass D:\n    def e(self) -> None: ..."
    )
    assert [fully_typed(f) for f in public_functions(tree)] == [True, False, False, True]


def test_deprecation_warnings_are_not_hidden():
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert not [f for f in settings.get("filterwarnings", []) if f.startswith("ignore::DeprecationWarning")]


FACE_MODELS = ("attributes", "celeb_attributes", "classifier", "crowd", "expression", "pose")


def test_every_face_model_has_the_same_shape():
    """An inference module (build_network, load_model, shipped_model, predict) and a training module (fit,
    model_card, train) for each trained face model; inference never imports training, and weights are written in one
    place. The pose model is two ridge regressions over the descriptor network's maps: no network of its own."""
    import importlib

    from tests.test_imports import import_graph

    graph = import_graph()
    for name in FACE_MODELS:
        inference = importlib.import_module(f"facellm.faces.{name}")
        training = importlib.import_module(f"facellm.faces.{name}_training")
        verbs = ("load_model", "shipped_model", "predict") + (() if name == "pose" else ("build_network",))
        assert all(callable(getattr(inference, verb, None)) for verb in verbs), name
        assert all(callable(getattr(training, verb, None)) for verb in ("fit", "model_card", "train")), name
        assert f"facellm.faces.{name}_training" not in graph[f"facellm.faces.{name}"]
        assert "facellm.faces.weight_files" in graph[f"facellm.faces.{name}_training"]
    writers = [p for p in python_files("src") if "torch.save(" in p.read_text()]
    assert [p.name for p in writers if "faces" in p.parts] == ["weight_files.py"]


def test_every_face_model_predicts_with_one_signature():
    """`predict(image, box=None, *, ...)`: the image, the face's box (None: the largest face; a crowd model takes the
    whole image), then keyword-only options, and a declared result type."""
    import importlib
    import inspect

    for name in FACE_MODELS:
        signature = inspect.signature(importlib.import_module(f"facellm.faces.{name}").predict)
        first, second, *rest = signature.parameters.values()
        assert (first.name, first.kind) == ("image", inspect.Parameter.POSITIONAL_OR_KEYWORD), name
        assert (second.name, second.default) == ("box", None), name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), name
        assert signature.return_annotation is not inspect.Signature.empty, name
