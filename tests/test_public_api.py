"""The public API takes a str or any os.PathLike wherever it takes a file or folder (never a pathlib.Path only)."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

# The packages' exports and the modules the README shows being called from Python.
MODULES = [
    "streamdet", "streamdet.calibrate", "streamdet.cascade", "streamdet.cluster", "streamdet.compress", "streamdet.config",
    "streamdet.export.exporter", "streamdet.live", "streamdet.train", "streamdet.train.comparison", "streamdet.video",
    "streamdet.weights",
]


def _public_functions(name: str):
    """(qualified name, function) of what `name` exports (its __all__, else what it defines), methods of classes included."""
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None) or [n for n, o in vars(module).items() if not n.startswith("_") and getattr(o, "__module__", None) == name]
    for symbol in exported:
        obj = getattr(module, symbol)
        if inspect.isfunction(obj):
            yield f"{name}.{symbol}", obj
        elif inspect.isclass(obj):
            for method, member in vars(obj).items():
                function = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if inspect.isfunction(function) and not method.startswith("_"):
                    yield f"{name}.{symbol}.{method}", function


@pytest.mark.parametrize("name", MODULES)
def test_every_path_parameter_also_takes_a_str(name):
    narrow = [
        f"{qualified}({parameter.name}: {parameter.annotation})"
        for qualified, function in _public_functions(name)
        for parameter in inspect.signature(function).parameters.values()
        if re.search(r"\bPath\b", str(parameter.annotation)) and not re.search(r"\bstr\b|StrPath|PathLike", str(parameter.annotation))
    ]
    assert not narrow, f"public functions that take a pathlib.Path only (take StrPath and convert on entry): {narrow}"
