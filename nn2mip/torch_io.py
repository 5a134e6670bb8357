"""Conversion between ``torch.nn`` models and the float64 ``Network`` IR."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from nn2mip.errors import InvalidNetworkError, UnsupportedLayerError
from nn2mip.lowering import (
    avg_pool2d_map,
    batchnorm_affine,
    conv2d_map,
    fold_after,
    max_pool2d_groups,
)
from nn2mip.network import AffineLayer, MaxGroups, Network


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(child, f"{prefix}{name}.")
    else:
        yield prefix.rstrip("."), module


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to(torch.float64).cpu().numpy()


class _Pending:
    """The affine map ``mat @ x + bias`` from the current layer input to the current tensor of
    ``shape`` (CHW order); ``mat is None`` while it is still the identity."""

    def __init__(self, shape: tuple[int, ...] | None) -> None:
        self.shape = shape
        self.mat: np.ndarray | sp.csr_array | None = None
        self.bias: np.ndarray | None = None

    def apply(self, mat, bias: np.ndarray, shape: tuple[int, ...] | None) -> None:  # noqa: ANN001
        """Compose ``mat @ . + bias`` after the pending map."""
        if self.mat is None:
            self.mat, self.bias = mat, np.asarray(bias, dtype=np.float64)
        else:
            self.bias = mat @ self.bias + bias
            self.mat = mat @ self.mat
            if sp.issparse(self.mat):
                self.mat = sp.csr_array(self.mat)
        self.shape = shape

    def scale(self, s: np.ndarray, t: np.ndarray) -> None:
        """``s * (pending) + t`` (BatchNorm folded after the map)."""
        if self.mat is None:
            n = s.size
            self.mat, self.bias = sp.csr_array(sp.identity(n, format="csr")), np.zeros(n)
        self.mat, self.bias = fold_after(self.mat, self.bias, s, t)

    def close(self, relu: bool, groups: MaxGroups | None = None, size: int = 0) -> AffineLayer:
        mat, bias = self.mat, self.bias
        if mat is None:  # the identity (a max pool or ReLU right after a layer)
            mat, bias = sp.csr_array(sp.identity(size, format="csr")), np.zeros(size)
        if sp.issparse(mat) and mat.nnz >= 0.25 * mat.shape[0] * mat.shape[1]:
            mat = mat.toarray()
        self.mat = self.bias = None
        return AffineLayer(mat, bias, relu=relu, groups=groups)


def _chw(shape: tuple[int, ...] | None, name: str, kind: str) -> tuple[int, int, int]:
    if shape is None or len(shape) != 3:
        raise UnsupportedLayerError(
            f"layer '{name}' ({kind}) needs a (C, H, W) input: pass input_shape=(C, H, W) to "
            "from_torch"
        )
    return shape  # type: ignore[return-value]


def _conv_padding(leaf: nn.Conv2d, name: str):  # noqa: ANN202
    if leaf.padding_mode != "zeros":
        raise UnsupportedLayerError(
            f"layer '{name}': Conv2d padding_mode '{leaf.padding_mode}' (only zeros)"
        )
    pad = leaf.padding
    if pad == "valid":
        return 0
    if pad == "same":  # torch puts the odd pad at the end
        total = [d * (k - 1) for d, k in zip(leaf.dilation, leaf.kernel_size, strict=True)]
        return (total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2)
    return pad


def from_torch(model: nn.Module, input_shape: Sequence[int] | None = None) -> Network:
    """Convert a ``nn.Sequential`` to a Network: Linear, ReLU, Flatten (Identity and Dropout
    skipped) and, given ``input_shape`` (C, H, W) of one sample, Conv2d, BatchNorm2d/1d (eval
    statistics, folded), AvgPool2d and MaxPool2d (a max-group layer). Consecutive linear maps
    become one (sparse for convolutions and pooling) layer.

    Raises ``UnsupportedLayerError`` naming the first layer that cannot be encoded.
    """
    if isinstance(model, nn.Linear):
        model = nn.Sequential(model)
    if not isinstance(model, nn.Sequential):
        raise UnsupportedLayerError(
            f"expected a torch.nn.Sequential, got {type(model).__name__}; "
            "wrap the layers in nn.Sequential"
        )
    shape = None if input_shape is None else tuple(int(v) for v in input_shape)
    pend = _Pending(shape)
    layers: list[AffineLayer] = []
    for name, leaf in _leaves(model):
        try:
            _convert(name, leaf, pend, layers)
        except InvalidNetworkError as err:
            raise UnsupportedLayerError(f"layer '{name}': {err}") from None
    if pend.mat is not None:
        layers.append(pend.close(relu=False))
    if not layers:
        raise UnsupportedLayerError("the model has no Linear layer")
    return Network(tuple(layers))


def _convert(name: str, leaf: nn.Module, pend: _Pending, layers: list[AffineLayer]) -> None:
    """Apply one leaf module to the pending map, closing a layer at ReLU and MaxPool2d."""
    if isinstance(leaf, nn.Linear):
        if pend.shape is not None and len(pend.shape) != 1:
            raise UnsupportedLayerError(
                f"layer '{name}': Linear on a tensor of shape {pend.shape}; add nn.Flatten"
            )
        # torch.nn.utils.prune keeps the masked weight in ``weight`` itself.
        w = _np(leaf.weight)
        b = _np(leaf.bias) if leaf.bias is not None else np.zeros(w.shape[0])
        if pend.shape is not None and pend.shape[0] != w.shape[1]:
            raise UnsupportedLayerError(
                f"layer '{name}': Linear takes {w.shape[1]} inputs but gets {pend.shape[0]}"
            )
        pend.apply(w, b, (w.shape[0],))
    elif isinstance(leaf, nn.ReLU):
        if pend.mat is None:
            if not layers:
                raise UnsupportedLayerError(f"layer '{name}': ReLU before any Linear layer")
            if layers[-1].relu:
                return  # relu(relu(x)) = relu(x)
            layers.append(pend.close(relu=True, size=layers[-1].out_features))
        else:
            layers.append(pend.close(relu=True))
    elif isinstance(leaf, nn.Conv2d):
        c, h, w = _chw(pend.shape, name, type(leaf).__name__)
        m = conv2d_map(
            _np(leaf.weight),
            _np(leaf.bias),
            (c, h, w),
            stride=leaf.stride,
            padding=_conv_padding(leaf, name),
            dilation=leaf.dilation,
            groups=leaf.groups,
        )
        pend.apply(m.matrix, m.bias, m.out_shape)
    elif isinstance(leaf, nn.BatchNorm2d | nn.BatchNorm1d):
        if pend.shape is None or leaf.running_mean is None:
            raise UnsupportedLayerError(
                f"layer '{name}': BatchNorm needs running statistics and input_shape"
            )
        n = leaf.num_features
        gamma = _np(leaf.weight) if leaf.weight is not None else np.ones(n)
        beta = _np(leaf.bias) if leaf.bias is not None else np.zeros(n)
        s, t = batchnorm_affine(
            gamma, beta, _np(leaf.running_mean), _np(leaf.running_var), leaf.eps, pend.shape
        )
        pend.scale(s, t)
    elif isinstance(leaf, nn.AvgPool2d):
        if leaf.divisor_override is not None:
            raise UnsupportedLayerError(f"layer '{name}': AvgPool2d divisor_override")
        m = avg_pool2d_map(
            _chw(pend.shape, name, type(leaf).__name__),
            leaf.kernel_size,
            leaf.stride,
            leaf.padding,
            ceil_mode=leaf.ceil_mode,
            count_include_pad=leaf.count_include_pad,
        )
        pend.apply(m.matrix, m.bias, m.out_shape)
    elif isinstance(leaf, nn.MaxPool2d):
        if leaf.return_indices:
            raise UnsupportedLayerError(f"layer '{name}': MaxPool2d with return_indices")
        shape = _chw(pend.shape, name, type(leaf).__name__)
        g = max_pool2d_groups(
            shape, leaf.kernel_size, leaf.stride, leaf.padding, leaf.dilation, leaf.ceil_mode
        )
        groups = MaxGroups(g.index, g.start)
        layers.append(pend.close(relu=False, groups=groups, size=int(np.prod(shape))))
        pend.shape = g.out_shape
    elif isinstance(leaf, nn.Flatten):
        if leaf.start_dim != 1 or leaf.end_dim != -1:
            raise UnsupportedLayerError(f"layer '{name}': Flatten of dims other than 1..-1")
        if pend.shape is not None:
            pend.shape = (int(np.prod(pend.shape)),)
    elif isinstance(leaf, nn.Identity | nn.Dropout):
        return  # identities at inference
    else:
        raise UnsupportedLayerError(
            f"unsupported layer '{name}' of type {type(leaf).__name__} (nn2mip encodes Linear, "
            "ReLU, Flatten, Conv2d, BatchNorm, AvgPool2d and MaxPool2d)"
        )


def to_torch(network: Network, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """Build an equivalent ``nn.Sequential`` (Linear, ReLU, ...) from a Network."""
    modules: list[nn.Module] = []
    for i, layer in enumerate(network.layers):
        if layer.groups is not None:
            raise UnsupportedLayerError(f"layer {i} is a max pooling layer; to_torch writes MLPs")
        lin = nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.dense_weight()))
            lin.bias.copy_(torch.from_numpy(layer.bias))
        modules.append(lin)
        if layer.relu:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def torch_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Evaluate a torch model on a numpy batch in float64 (a copy of the model, so the original
    keeps its dtype); used as the second, independent witness check."""
    model64 = copy.deepcopy(model).to(torch.float64).eval()
    with torch.no_grad():
        out = model64(torch.as_tensor(np.atleast_2d(x), dtype=torch.float64))
    return out.numpy()
