"""nn2mip: ReLU networks as exact big-M MIPs, with sound bounds, solved by HiGHS.

The public API, in the order of a typical use::

    from nn2mip import from_torch, ball_region, build_formulation, solve_highs

IR and files: ``Network``, ``AffineLayer``, ``load_network``, ``save_network``, ``load_onnx``,
``save_onnx``, ``from_torch``, ``to_torch``, ``load_vnnlib``, ``load_digits``, ``load_dataset``.
Regions and bounds: ``ball_region``, ``box_region``, ``compute_bounds``, ``DEFAULT_BOUND_METHOD``.
MIPs: ``build_formulation``, ``solve_highs``, ``add_network`` (into a Pyomo model), ``solve_pyomo``.
Optimization over a trained model (constraint learning): ``optimize``.
Time: ``Budget``. Errors: ``Nn2mipError`` and its subclasses in ``nn2mip.errors``.

The names load on first use (PEP 562), so ``import nn2mip`` stays cheap: the command line
imports this package before it parses its arguments, and torch alone takes seconds to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it.
_EXPORTS = {
    "Network": "nn2mip.network",
    "AffineLayer": "nn2mip.network",
    "load_network": "nn2mip.serialize",
    "save_network": "nn2mip.serialize",
    "load_onnx": "nn2mip.onnx_io",
    "save_onnx": "nn2mip.onnx_io",
    "from_torch": "nn2mip.torch_io",
    "to_torch": "nn2mip.torch_io",
    "load_vnnlib": "nn2mip.vnnlib",
    "load_digits": "nn2mip.datasets",
    "load_dataset": "nn2mip.datasets",
    "ball_region": "nn2mip.region",
    "box_region": "nn2mip.region",
    "compute_bounds": "nn2mip.bounds",
    "DEFAULT_BOUND_METHOD": "nn2mip.bounds",
    "build_formulation": "nn2mip.formulation",
    "solve_highs": "nn2mip.highs_backend",
    "add_network": "nn2mip.pyomo_backend",
    "solve_pyomo": "nn2mip.pyomo_backend",
    "Budget": "nn2mip.budget",
    "Nn2mipError": "nn2mip.errors",
    "optimize": "nn2mip.optimization",
}

__all__ = [
    "AffineLayer",
    "Budget",
    "DEFAULT_BOUND_METHOD",
    "Network",
    "Nn2mipError",
    "add_network",
    "ball_region",
    "box_region",
    "build_formulation",
    "compute_bounds",
    "from_torch",
    "load_dataset",
    "load_digits",
    "load_network",
    "load_onnx",
    "load_vnnlib",
    "optimize",
    "save_network",
    "save_onnx",
    "solve_highs",
    "solve_pyomo",
    "to_torch",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nn2mip' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and IDEs see
    from nn2mip.bounds import DEFAULT_BOUND_METHOD, compute_bounds
    from nn2mip.budget import Budget
    from nn2mip.datasets import load_dataset, load_digits
    from nn2mip.errors import Nn2mipError
    from nn2mip.formulation import build_formulation
    from nn2mip.highs_backend import solve_highs
    from nn2mip.network import AffineLayer, Network
    from nn2mip.onnx_io import load_onnx, save_onnx
    from nn2mip.optimization import optimize
    from nn2mip.pyomo_backend import add_network, solve_pyomo
    from nn2mip.region import ball_region, box_region
    from nn2mip.serialize import load_network, save_network
    from nn2mip.torch_io import from_torch, to_torch
    from nn2mip.vnnlib import load_vnnlib
