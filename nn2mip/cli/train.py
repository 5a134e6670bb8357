"""``nn2mip train``: train an MLP on digits or MNIST, optionally with sparsity regularizers."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from nn2mip.cli.common import (
    DATASETS,
    MODEL_SUFFIXES,
    Progress,
    check_data,
    check_output_file,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    print_json,
    save_model,
)
from nn2mip.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train",
        help="train a ReLU MLP (with L1/group-lasso/SPR/stability)",
        description="Train a ReLU MLP on digits or MNIST, optionally with sparsity "
        "regularizers, ReLU-stability or adversarial training; write it as .safetensors "
        "(float64, nn2mip's own format) or .onnx (float32).",
    )
    p.add_argument("--data", choices=DATASETS, default="digits", help="data set")
    p.add_argument(
        "--data-dir", default=None, help="directory of the MNIST IDX files (default: searched)"
    )
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[64, 64], help="hidden widths")
    p.add_argument("--epochs", type=positive_int, default=20, help="training epochs")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="learning rate")
    p.add_argument(
        "--optimizer", choices=["adam", "sgd"], default="adam", help="optimizer (sgd: momentum 0.9)"
    )
    p.add_argument("--batch-size", type=positive_int, default=64, help="mini-batch size")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the init and shuffling")
    p.add_argument("--l1", type=nonneg_float, default=0.0, help="L1 strength (proximal step)")
    p.add_argument(
        "--group-lasso", type=nonneg_float, default=0.0, help="group-lasso strength (proximal)"
    )
    p.add_argument("--spr-lambda", type=nonneg_float, default=0.0, help="SPR strength")
    p.add_argument("--spr-alpha", type=float, default=0.5, help="SPR alpha in (0, 1)")
    p.add_argument("--stability", type=nonneg_float, default=0.0, help="ReLU-stability weight")
    p.add_argument("--stability-eps", type=nonneg_float, default=0.02, help="its ball's radius")
    p.add_argument("--stability-norm", choices=["inf", "1"], default="inf", help="its ball's norm")
    p.add_argument(
        "--stability-bounds",
        choices=["interval", "symbolic"],
        default="interval",
        help="interval (L-inf only) or symbolic (the bounds the MIP gets; costs more per row)",
    )
    p.add_argument(
        "--stability-rows",
        type=nonneg_int,
        default=0,
        help="with symbolic bounds: the loss on the first N rows of each batch (0: all)",
    )
    p.add_argument(
        "--stability-loss",
        default="tanh",
        help="tanh (Xiao et al.), hinge or ratio (keeps a gradient on deep, wide-bound layers)",
    )
    p.add_argument(
        "--adv-eps",
        type=nonneg_float,
        default=0.0,
        help="adversarial training: PGD ball radius (0: off)",
    )
    p.add_argument("--adv-norm", choices=["inf", "1"], default="inf", help="its ball's norm")
    p.add_argument("--adv-steps", type=positive_int, default=10, help="PGD steps per batch")
    p.add_argument(
        "--adv-weight",
        type=float,
        default=0.5,
        help="share of the loss on the PGD points, in (0, 1]",
    )
    p.add_argument(
        "--adv-rows",
        type=nonneg_int,
        default=0,
        help="attack only the first N rows of each batch (0: all)",
    )
    p.add_argument("--compact", action="store_true", help="remove neurons left without weights")
    p.add_argument(
        "--out", required=True, help="output model file (.safetensors, or .onnx in float32)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def validate_common(args: argparse.Namespace) -> None:
    """Checks shared by ``train`` and ``prune``, made before anything is loaded: the output
    place, the data set, numbers argparse cannot check alone."""
    check_output_file(args.out, "--out", suffixes=MODEL_SUFFIXES)
    args.data_dir = check_data(args.data, args.data_dir)
    if not 0.0 < args.spr_alpha < 1.0:
        raise InvalidInputError(f"--spr-alpha must be in (0, 1), got {args.spr_alpha}")


def epoch_reporter(
    x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, say: Progress
) -> Callable[[object], None] | None:
    """An ``after_step`` hook that reports loss and accuracy on the training set after each
    epoch (``train`` calls it once per batch); ``None`` when ``say`` is quiet."""
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    import torch

    if say.quiet:
        return None
    steps = -(-len(y) // batch_size)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    count = 0

    def hook(model: torch.nn.Module) -> None:  # noqa: F821
        nonlocal count
        count += 1
        if count % steps == 0:
            with torch.no_grad():
                logits = model(xt)
                loss = float(torch.nn.functional.cross_entropy(logits, yt))
                acc = float((logits.argmax(dim=1) == yt).float().mean())
            say(f"epoch {count // steps}/{epochs}: train loss {loss:.4f}, train accuracy {acc:.4f}")

    return hook


def run(args: argparse.Namespace) -> int:
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from pruning.adversarial_training import Adversary
    from pruning.regularizers import relu_stability_regularizer

    validate_common(args)
    # The regularizers' and adversary's own checks, run before any data is loaded.
    try:
        stability = relu_stability_regularizer(
            args.stability,
            args.stability_eps,
            norm=args.stability_norm,
            bounds=args.stability_bounds,
            loss=args.stability_loss,
            rows=args.stability_rows,
        )
    except ValueError as e:
        raise InvalidInputError(f"--stability options: {e}") from None
    if not 0.0 < args.adv_weight <= 1.0:
        raise InvalidInputError(f"--adv-weight must be in (0, 1], got {args.adv_weight}")
    adversary = None
    if args.adv_eps > 0:
        try:
            adversary = Adversary(
                args.adv_eps, args.adv_norm, args.adv_steps, args.adv_weight, rows=args.adv_rows
            )
        except InvalidInputError as e:
            raise InvalidInputError(f"--adv options: {e}") from None
    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    import torch

    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.datasets import load_dataset
    from nn2mip.torch_io import from_torch
    from pruning.adversarial_training import robust_accuracy
    from pruning.compact import compact_network
    from pruning.regularizers import (
        combine_hooks,
        combine_regularizers,
        group_lasso_prox,
        l1_prox,
        spr_regularizer,
    )

    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from pruning.training import accuracy, make_mlp, train

    say = Progress(args.quiet or args.json)
    torch.set_num_threads(1)
    say(f"loading {args.data}")
    data = load_dataset(args.data, args.data_dir)
    say(
        f"training {data.num_features}-{'-'.join(map(str, args.hidden))}-{data.num_classes} "
        f"for {args.epochs} epochs on {len(data.y_train)} examples"
    )
    model = make_mlp(data.num_features, args.hidden, data.num_classes, seed=args.seed)
    reg = combine_regularizers(
        spr_regularizer(args.spr_lambda, args.spr_alpha) if args.spr_lambda > 0 else None,
        stability if args.stability > 0 else None,
    )
    hook = combine_hooks(
        l1_prox(args.l1, args.lr) if args.l1 > 0 else None,
        group_lasso_prox(args.group_lasso, args.lr) if args.group_lasso > 0 else None,
        epoch_reporter(data.x_train, data.y_train, args.epochs, args.batch_size, say),
    )
    train(
        model,
        data.x_train,
        data.y_train,
        args.epochs,
        lr=args.lr,
        optimizer=args.optimizer,
        batch_size=args.batch_size,
        regularizer=reg,
        after_step=hook,
        seed=args.seed,
        adversary=adversary,
    )
    acc = accuracy(model, data.x_test, data.y_test)
    net = from_torch(model)
    if args.compact:
        net = compact_network(net)
    meta = {
        "data": args.data,
        "test_accuracy": f"{acc:.4f}",
        "training": " ".join(
            f"{k}={getattr(args, k)}"
            for k in (
                "epochs",
                "lr",
                "optimizer",
                "l1",
                "group_lasso",
                "spr_lambda",
                "spr_alpha",
                "stability",
                "stability_eps",
                "stability_norm",
                "stability_bounds",
                "stability_rows",
                "stability_loss",
                "adv_eps",
                "adv_norm",
                "adv_steps",
                "adv_weight",
                "adv_rows",
                "seed",
            )
        ),
    }
    path = save_model(net, args.out, meta=meta)
    info = {
        "out": str(path),
        "shape": net.describe(),
        "test_accuracy": acc,
        "hidden_neurons": net.num_hidden_neurons,
        "nonzero_weights": net.num_weights,
    }
    if adversary is not None:
        # The same attack at test time: an upper bound on what a verifier can certify.
        info["pgd_accuracy"] = robust_accuracy(model, data.x_test, data.y_test, adversary)
    if args.json:
        print_json(info)
    else:
        for k, v in info.items():
            print(f"{k:16s} {v:.4f}" if isinstance(v, float) else f"{k:16s} {v}")
    return 0
