"""The packages' public names: each resolves, ``__all__`` lists exactly them, and importing
``nn2mip`` stays cheap (the command line imports it before parsing its arguments)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import adversarial
import nn2mip
import pruning


@pytest.mark.parametrize("package", [nn2mip, pruning, adversarial], ids=lambda p: p.__name__)
def test_every_public_name_resolves(package) -> None:
    assert package.__all__ == sorted(set(package.__all__))
    for name in package.__all__:
        value = getattr(package, name)
        assert value is not None and not isinstance(value, type(sys)), name  # never a module


def test_nn2mip_exports_match_its_table() -> None:
    assert set(nn2mip.__all__) == set(nn2mip._EXPORTS)
    with pytest.raises(AttributeError):
        nn2mip.no_such_name  # noqa: B018


def test_function_names_do_not_shadow_modules() -> None:
    """``verify``, ``train`` and ``optimize`` are functions; their modules are ``pipeline``,
    ``training`` and ``optimization``, so importing a module never shadows the function."""
    import adversarial.pipeline as pipeline
    import pruning.training as training

    assert adversarial.verify is pipeline.verify and pruning.train is training.train
    assert nn2mip.optimize is importlib.import_module("nn2mip.optimization").optimize


def test_import_nn2mip_loads_no_torch() -> None:
    code = "import sys, nn2mip; print('torch' in sys.modules, 'highspy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
