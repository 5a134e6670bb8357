"""Training of MLPs and CNNs on in-memory data, with optional weight masks kept exactly zero."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from pruning.adversarial_training import Adversary
from pruning.masks import Masks, apply_masks, mask_gradients


def make_mlp(
    input_size: int, hidden: Sequence[int], output_size: int, seed: int = 0
) -> nn.Sequential:
    """``Linear -> ReLU -> ... -> Linear``, float32, deterministic initialization."""
    torch.manual_seed(seed)
    sizes = [input_size, *hidden, output_size]
    mods: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def make_cnn(
    input_shape: Sequence[int] = (1, 28, 28),
    channels: Sequence[int] = (16, 32),
    hidden: Sequence[int] = (100,),
    output_size: int = 10,
    kernel: int = 4,
    stride: int = 2,
    padding: int = 1,
    seed: int = 0,
) -> nn.Sequential:
    """``(Conv2d -> ReLU) x len(channels) -> Flatten -> (Linear -> ReLU) x len(hidden) ->
    Linear``, float32, deterministic initialization; inputs of shape (N, *input_shape). The
    default (4x4 kernels, stride 2, padding 1, as in the VNN-COMP oval21 nets) maps MNIST's
    28x28 to 16x14x14 and 32x7x7."""
    torch.manual_seed(seed)
    c, h, w = (int(v) for v in input_shape)
    mods: list[nn.Module] = []
    for out in channels:
        mods += [nn.Conv2d(c, out, kernel, stride, padding), nn.ReLU()]
        c = out
        h = (h + 2 * padding - kernel) // stride + 1
        w = (w + 2 * padding - kernel) // stride + 1
        if min(h, w) < 1:
            raise ValueError(f"input {tuple(input_shape)} is too small for {len(channels)} convs")
    mods.append(nn.Flatten())
    sizes = [c * h * w, *hidden, output_size]
    for i in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    """The model's Linear layers in forward order."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


Regularizer = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int = 20,
    lr: float = 1e-3,
    batch_size: int = 64,
    optimizer: str = "adam",
    masks: Masks | None = None,
    regularizer: Regularizer | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    seed: int = 0,
    on_backward: Callable[[nn.Module], None] | None = None,
    weight_decay: float = 0.0,
    adversary: Adversary | None = None,
    loss: str | None = None,
) -> nn.Module:
    """Minimize cross-entropy (+ ``regularizer(model, batch_x)``) in place and return the model.

    ``loss``: "ce" (class labels) or "mse" (regression targets, one column per output); by
    default "mse" when ``y`` is a floating-point array, so every pruning method that trains
    through here fits surrogates (regression) as well as classifiers.

    Masked weights get zero gradients (so optimizer state never builds up for them) and are
    zeroed again after every optimizer step, so momentum or weight decay can never revive them.
    ``masks`` may be changed in place by the hooks (dynamic sparse training does).
    ``on_backward`` sees the dense gradients before masking (RigL grows by them);
    ``after_step`` runs after the step and the re-masking (proximal steps plug in here).
    Parameters with ``requires_grad=False`` are left untouched (freezing).
    ``adversary`` mixes in the cross-entropy on its PGD points (adversarial training).
    """
    gen = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    loss = loss_kind(y) if loss is None else loss
    if loss == "mse":
        yt = torch.as_tensor(np.asarray(y, dtype=np.float32).reshape(len(y), -1))
    elif loss == "ce":
        yt = torch.as_tensor(y, dtype=torch.long)
    else:
        raise ValueError(f"unknown loss {loss!r}; choose 'ce' or 'mse'")
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose 'adam' or 'sgd'")
    loss_fn: nn.Module = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
    if masks is not None:
        apply_masks(model, masks)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=gen)
        for start in range(0, len(yt), batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad()
            if adversary is not None:
                batch_loss = adversary.loss(model, xt[idx], yt[idx], loss_fn)
            else:
                batch_loss = loss_fn(model(xt[idx]), yt[idx])
            if regularizer is not None:
                batch_loss = batch_loss + regularizer(model, xt[idx])
            batch_loss.backward()
            if on_backward is not None:
                on_backward(model)
            if masks is not None:
                mask_gradients(model, masks)
            opt.step()
            if masks is not None:
                apply_masks(model, masks)
            if after_step is not None:
                after_step(model)
    model.eval()
    return model


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows of ``x`` whose argmax prediction equals ``y``."""
    model.eval()
    with torch.no_grad():
        p = model(torch.as_tensor(x, dtype=next(model.parameters()).dtype)).argmax(dim=1)
    return float((p.numpy() == np.asarray(y)).mean())


def loss_kind(y: np.ndarray) -> str:
    """ "mse" for floating-point targets (regression), "ce" for integer class labels."""
    return "mse" if np.issubdtype(np.asarray(y).dtype, np.floating) else "ce"


def mse(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of ``model`` on regression targets ``y`` (n, outputs) or (n,)."""
    model.eval()
    with torch.no_grad():
        p = model(torch.as_tensor(x, dtype=next(model.parameters()).dtype)).double().numpy()
    return float(np.mean((p - np.asarray(y, np.float64).reshape(p.shape)) ** 2))
