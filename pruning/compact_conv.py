"""Physical compaction of CNNs and their storage without pickles.

``compact_cnn`` takes an ``nn.Sequential`` of Conv2d, BatchNorm2d/1d, ReLU, MaxPool2d,
AvgPool2d, Flatten, Linear (Dropout and Identity dropped), folds every BatchNorm into the
conv or linear layer before it, and removes every channel (and hidden neuron) that is
exactly zero or that nothing downstream reads: a removed filter takes its output channel, the
matching input channel of the next conv, or the matching columns (channel x spatial block) of
the first Linear after Flatten. ``save_cnn`` / ``load_cnn`` store a flat ``nn.Sequential`` as
safetensors with its architecture as JSON metadata.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from pruning.filters import _bn_scale_shift

_PASS = (nn.Dropout, nn.Identity)
_CHANNELWISE = (nn.ReLU, nn.MaxPool2d, nn.AvgPool2d)


def leaf_modules(model: nn.Module) -> list[nn.Module]:
    """The model's leaf modules in forward order (nested Sequentials flattened)."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"expected an nn.Sequential, got {type(model).__name__}")
    return [m for m in model.modules() if not list(m.children())]


def fold_batchnorm(model: nn.Sequential) -> nn.Sequential:
    """An equivalent (eval mode) ``nn.Sequential`` without BatchNorm or Dropout: each
    BatchNorm2d/1d is folded into the Conv2d/Linear right before it (``W' = s W``, ``b' = s b
    + t`` per output channel). A BatchNorm anywhere else is an error."""
    out: list[nn.Module] = []
    for mod in leaf_modules(model):
        if isinstance(mod, _PASS):
            continue
        if isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            prev = out[-1] if out else None
            if not isinstance(prev, nn.Conv2d | nn.Linear):
                raise ValueError(
                    f"{type(mod).__name__} must follow a Conv2d or Linear to be folded"
                )
            s, t = _bn_scale_shift(mod)
            w = prev.weight.detach()
            b = prev.bias.detach() if prev.bias is not None else torch.zeros_like(s)
            prev.weight = nn.Parameter(w * s.reshape(-1, *([1] * (w.dim() - 1))).to(w.dtype))
            prev.bias = nn.Parameter((s * b + t).detach().to(w.dtype))
            continue
        out.append(copy.deepcopy(mod))
    return nn.Sequential(*out).eval()


def _shapes(mods: Sequence[nn.Module], input_shape: Sequence[int], dtype) -> list[torch.Size]:
    """Output shape (without batch) of every module on a probe input."""
    x = torch.zeros((1, *input_shape), dtype=dtype)
    shapes = []
    with torch.no_grad():
        for m in mods:
            x = m(x)
            shapes.append(x.shape[1:])
    return shapes


def _constant_after(value: torch.Tensor, between: Sequence[nn.Module]) -> torch.Tensor:
    """What a unit whose pre-activation is the constant ``value`` outputs after the
    channel-wise modules ``between`` (NaN where it is not one constant, e.g. an average pool
    that mixes a nonzero constant with zero padding)."""
    v = value.clone()
    for m in between:
        if isinstance(m, nn.ReLU):
            v = torch.clamp(v, min=0.0)
        elif isinstance(m, nn.AvgPool2d) and m.padding not in (0, (0, 0)) and m.count_include_pad:
            v = torch.where(v == 0, v, torch.full_like(v, float("nan")))
    return v


def _in_slices(consumer: nn.Module, unit: int, block: int) -> Any:
    """Index of the consumer's weight read by producer unit ``unit``."""
    if isinstance(consumer, nn.Conv2d):
        return (slice(None), unit)
    return (slice(None), slice(unit * block, (unit + 1) * block))


def compact_cnn(model: nn.Sequential, input_shape: Sequence[int]) -> nn.Sequential:
    """An equivalent, physically smaller ``nn.Sequential`` (eval mode, the model's dtype) for
    inputs of ``input_shape`` (C, H, W) or (n,).

    BatchNorm is folded first. Then, until nothing changes, for each conv/linear layer
    followed (through ReLU, pooling, Flatten) by another one: a unit whose weights are all
    zero and whose output after the activation is exactly 0 is removed, and so is a unit the
    next layer gives only zero weights; the next layer loses the matching input channel or
    column block. Grouped convolutions are left as they are. At least one unit per layer is
    kept (zeroed if it is unused) so shapes stay valid."""
    mods = list(fold_batchnorm(model))
    dtype = next(model.parameters()).dtype
    producers = [i for i, m in enumerate(mods) if isinstance(m, nn.Conv2d | nn.Linear)]
    for i in producers:
        if mods[i].bias is None:  # a uniform layout: every producer has a bias
            out_units = mods[i].weight.shape[0]
            mods[i].bias = nn.Parameter(torch.zeros(out_units, dtype=mods[i].weight.dtype))
    pairs = []
    for p, q in zip(producers, producers[1:], strict=False):
        between = mods[p + 1 : q]
        flat = [m for m in between if isinstance(m, nn.Flatten)]
        if not all(isinstance(m, _CHANNELWISE + (nn.Flatten,)) for m in between):
            continue
        if any(isinstance(m, nn.Conv2d) and m.groups != 1 for m in (mods[p], mods[q])):
            continue
        if isinstance(mods[q], nn.Conv2d) and (flat or not isinstance(mods[p], nn.Conv2d)):
            continue
        pairs.append((p, q, between, bool(flat)))
    changed = True
    while changed:
        changed = False
        shapes = _shapes(mods, input_shape, dtype)
        for p, q, between, flat in pairs:
            prod, cons = mods[p], mods[q]
            w, b = prod.weight.detach(), prod.bias.detach()
            units = w.shape[0]
            if flat:
                at_flatten = shapes[
                    p + next(k for k, m in enumerate(between) if isinstance(m, nn.Flatten))
                ]
                block = int(torch.tensor(at_flatten).prod()) // units
            else:
                block = 1
            zero_row = ~(w.reshape(units, -1) != 0).any(dim=1)
            dead = zero_row & (_constant_after(b, between) == 0)
            cw = cons.weight.detach()
            unused = torch.tensor(
                [not bool((cw[_in_slices(cons, u, block)] != 0).any()) for u in range(units)]
            )
            keep = ~(dead | unused)
            if not bool(keep.any()):
                keep[0] = True
                with torch.no_grad():  # inert: nothing reads it, make it exactly zero too
                    prod.weight[0] = 0.0
                    prod.bias[0] = 0.0
            if bool(keep.all()):
                continue
            mods[p] = _take_outputs(prod, keep)
            cols = keep if not flat else keep.repeat_interleave(block)
            mods[q] = _take_inputs(cons, cols)
            changed = True
    return nn.Sequential(*mods).eval()


def _take_outputs(layer: nn.Conv2d | nn.Linear, keep: torch.Tensor) -> nn.Module:
    w, b = layer.weight.detach()[keep], layer.bias.detach()[keep]
    return _rebuilt(layer, w, b)


def _take_inputs(layer: nn.Conv2d | nn.Linear, keep: torch.Tensor) -> nn.Module:
    return _rebuilt(layer, layer.weight.detach()[:, keep], layer.bias.detach())


def _rebuilt(layer: nn.Conv2d | nn.Linear, w: torch.Tensor, b: torch.Tensor) -> nn.Module:
    if isinstance(layer, nn.Conv2d):
        new: nn.Module = nn.Conv2d(
            w.shape[1],
            w.shape[0],
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            1,
            True,
            layer.padding_mode,
            dtype=w.dtype,
        )
    else:
        new = nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        new.bias.copy_(b)
    return new


def conv_channels(model: nn.Module) -> list[int]:
    """Output channels of each Conv2d layer."""
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


def count_parameters_nonzero(model: nn.Module) -> int:
    """Nonzero weights (not biases) of the Conv2d and Linear layers."""
    return int(
        sum(
            int((m.weight != 0).sum())
            for m in model.modules()
            if isinstance(m, nn.Conv2d | nn.Linear)
        )
    )


# ---------------------------------------------------------------- storage (no pickles)


def architecture(model: nn.Sequential) -> list[dict[str, Any]]:
    """A JSON-able description of a flat ``nn.Sequential`` (one dict per layer)."""
    spec: list[dict[str, Any]] = []
    for m in leaf_modules(model):
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise ValueError("only zero-padded Conv2d with explicit padding can be saved")
            d = dict(
                in_channels=m.in_channels,
                out_channels=m.out_channels,
                kernel_size=list(m.kernel_size),
                stride=list(m.stride),
                padding=list(m.padding),
                dilation=list(m.dilation),
                groups=m.groups,
                bias=m.bias is not None,
            )
        elif isinstance(m, nn.Linear):
            d = dict(
                in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None
            )
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            d = dict(num_features=m.num_features, eps=m.eps, affine=m.affine)
        elif isinstance(m, nn.MaxPool2d):
            d = dict(
                kernel_size=m.kernel_size,
                stride=m.stride,
                padding=m.padding,
                dilation=m.dilation,
                ceil_mode=m.ceil_mode,
            )
        elif isinstance(m, nn.AvgPool2d):
            if m.divisor_override is not None:
                raise ValueError("AvgPool2d with divisor_override cannot be saved")
            d = dict(
                kernel_size=m.kernel_size,
                stride=m.stride,
                padding=m.padding,
                ceil_mode=m.ceil_mode,
                count_include_pad=m.count_include_pad,
            )
        elif isinstance(m, nn.Flatten):
            d = dict(start_dim=m.start_dim, end_dim=m.end_dim)
        elif isinstance(m, nn.Dropout):
            d = dict(p=m.p)
        elif isinstance(m, nn.ReLU | nn.Identity):
            d = {}
        else:
            raise ValueError(f"cannot save a layer of type {type(m).__name__}")
        spec.append({"type": type(m).__name__, **d})
    return spec


_BUILD = {
    "Conv2d": nn.Conv2d,
    "Linear": nn.Linear,
    "BatchNorm1d": nn.BatchNorm1d,
    "BatchNorm2d": nn.BatchNorm2d,
    "MaxPool2d": nn.MaxPool2d,
    "AvgPool2d": nn.AvgPool2d,
    "Flatten": nn.Flatten,
    "Dropout": nn.Dropout,
    "ReLU": nn.ReLU,
    "Identity": nn.Identity,
}


def build(spec: Sequence[dict[str, Any]], dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """The ``nn.Sequential`` an ``architecture`` spec describes (fresh parameters)."""
    mods = []
    for d in spec:
        args = dict(d)
        kind = args.pop("type", None)
        if kind not in _BUILD:
            raise ValueError(f"unknown layer type {kind!r} in the architecture")
        cls = _BUILD[kind]
        if kind in ("Conv2d", "Linear", "BatchNorm1d", "BatchNorm2d"):
            args["dtype"] = dtype
        mods.append(cls(**args))
    return nn.Sequential(*mods)


def save_cnn(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int],
    meta: dict[str, str] | None = None,
) -> Path:
    """Write a torch CNN as ``.safetensors``: the flat Sequential's state dict, with the
    architecture (JSON), the input shape and ``meta`` in the header."""
    flat = nn.Sequential(*leaf_modules(model))
    header = dict(meta or {})
    header.update(
        format="nn2mip-torch-sequential",
        architecture=json.dumps(architecture(flat)),
        input_shape=json.dumps([int(v) for v in input_shape]),
    )
    tensors = {k: v.detach().contiguous().cpu() for k, v in flat.state_dict().items()}
    save_file(tensors, str(path), metadata=header)
    return Path(path)


def load_cnn(path: str | Path) -> tuple[nn.Sequential, tuple[int, ...], dict[str, str]]:
    """Inverse of ``save_cnn``: ``(model in eval mode, input shape, header)``."""
    with safe_open(str(path), framework="pt") as f:
        header = dict(f.metadata() or {})
    if header.get("format") != "nn2mip-torch-sequential":
        raise ValueError(f"{path} is not a CNN saved by pruning.compact_conv.save_cnn")
    tensors = load_file(str(path))
    dtype = next((t.dtype for k, t in tensors.items() if k.endswith("weight")), torch.float32)
    model = build(json.loads(header["architecture"]), dtype)
    model.load_state_dict(tensors, strict=True)
    return model.eval(), tuple(json.loads(header["input_shape"])), header
