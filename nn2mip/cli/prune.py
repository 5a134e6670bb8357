"""``nn2mip prune``: apply one method of the pruning catalogue to a saved model and write the
compacted (physically smaller) result."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from nn2mip.cli.common import (
    DATASETS,
    Progress,
    check_model_file,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    print_json,
    save_model,
)
from nn2mip.cli.train import validate_common
from nn2mip.errors import InvalidInputError
from pruning.methods import FROM_SCRATCH, METHODS


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "prune",
        help="prune a model with a catalogue method and compact it",
        description="Prune MODEL (.safetensors written by nn2mip, or .onnx) with one method of "
        "the catalogue, fine-tune, compact, and write the result (.safetensors, or .onnx in "
        "float32).",
    )
    p.add_argument("model", help="model file (.safetensors written by nn2mip, or .onnx)")
    p.add_argument(
        "--method",
        default=None,
        choices=METHODS,
        metavar="METHOD",
        help=f"one of: {', '.join(METHODS)} ({', '.join(FROM_SCRATCH)} retrain the model's "
        "architecture from a fresh initialization)",
    )
    p.add_argument(
        "--amount",
        type=float,
        default=None,
        help="fraction in [0, 1) of weights (of hidden neurons for neuron/group-lasso/spr)",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="a pruning recipe (TOML, e.g. data/recipes/seed_2x100.toml) in place of --method "
        "and --amount (and --seed: the recipe's seed is used); its [dense] table is not "
        "used, MODEL is pruned",
    )
    p.add_argument(
        "--finetune-epochs",
        type=nonneg_int,
        default=10,
        help="fine-tuning epochs (the whole run for gradual)",
    )
    p.add_argument(
        "--epochs", type=positive_int, default=20, help="training epochs (from-scratch, l1...)"
    )
    p.add_argument("--data", choices=DATASETS, default="digits", help="data set")
    p.add_argument(
        "--data-dir", default=None, help="directory of the MNIST IDX files (default: searched)"
    )
    p.add_argument("--lr", type=positive_float, default=3e-3, help="learning rate")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="optimizer")
    p.add_argument("--batch-size", type=positive_int, default=64, help="mini-batch size")
    p.add_argument("--lam", type=nonneg_float, default=1e-3, help="l1 / group-lasso strength")
    p.add_argument("--spr-lambda", type=nonneg_float, default=0.05, help="SPR strength")
    p.add_argument("--spr-alpha", type=float, default=0.5, help="SPR alpha in (0, 1)")
    p.add_argument("--rounds", type=positive_int, default=3, help="lottery: pruning rounds")
    p.add_argument("--rewind", type=nonneg_int, default=0, help="lottery: rewind step (0 = init)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of shuffling and re-inits")
    p.add_argument(
        "--keep-masks",
        action="store_true",
        help="save uncompacted, with masks (.safetensors only)",
    )
    p.add_argument(
        "--out", required=True, help="output model file (.safetensors, or .onnx in float32)"
    )
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    check_model_file(args.model)
    recipe = None
    if args.recipe is not None:
        if args.method is not None or args.amount is not None:
            raise InvalidInputError("give either --recipe or --method and --amount, not both")
        # Imported on use, not at the top: keeps `nn2mip --help` fast.
        from pruning.recipe import load_recipe

        recipe = load_recipe(args.recipe)
        args.method, args.amount = "recipe", 0.0  # the recipe's steps carry their own
    elif args.method is None or args.amount is None:
        raise InvalidInputError("give --method and --amount, or --recipe FILE")
    if not (np.isfinite(args.amount) and 0.0 <= args.amount < 1.0):
        raise InvalidInputError(f"--amount must be in [0, 1), got {args.amount}")
    validate_common(args)
    if args.keep_masks and Path(args.out).suffix.lower() == ".onnx":
        raise InvalidInputError("--keep-masks needs a .safetensors --out (ONNX holds no masks)")
    if Path(args.out).resolve() == Path(args.model).resolve():
        raise InvalidInputError(f"--out {args.out} is the input model; write somewhere else")

    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    import torch

    # Imported on use, not at the top: keeps `nn2mip --help` fast.
    from nn2mip.datasets import load_dataset
    from nn2mip.torch_io import from_torch
    from pruning.catalogue import MethodConfig, run_method
    from pruning.compact import compact_network
    from pruning.masks import load_model, mask_sparsity, masks_to_list
    from pruning.training import accuracy, linear_layers, make_mlp

    say = Progress(args.quiet or args.json)
    model, _, meta = load_model(args.model)
    torch.set_num_threads(1)
    data = load_dataset(args.data, args.data_dir)
    lins = linear_layers(model)
    if lins[0].in_features != data.num_features or lins[-1].out_features != data.num_classes:
        raise InvalidInputError(
            f"model has {lins[0].in_features} inputs and {lins[-1].out_features} outputs; "
            f"{args.data} has {data.num_features} features and {data.num_classes} classes"
        )
    before = from_torch(model)
    acc_before = accuracy(model, data.x_test, data.y_test)
    say(f"{args.method} pruning of {before.describe()} (amount {args.amount}) on {args.data}")
    if args.method in FROM_SCRATCH:
        model = make_mlp(data.num_features, before.hidden_sizes, data.num_classes, args.seed)
    cfg = MethodConfig(
        finetune_epochs=args.finetune_epochs,
        epochs=args.epochs,
        lr=args.lr,
        optimizer=args.optimizer,
        batch_size=args.batch_size,
        lam=args.lam,
        spr_lambda=args.spr_lambda,
        spr_alpha=args.spr_alpha,
        rounds=args.rounds,
        rewind_iteration=args.rewind,
        seed=args.seed,
    )
    if recipe is not None:
        # Imported on use, not at the top: keeps `nn2mip --help` fast.
        from pruning.recipe import run_recipe

        result = run_recipe(recipe, data.x_train, data.y_train, model)
        model, masks = result.model, result.masks
    else:
        model, masks = run_method(model, data.x_train, data.y_train, args.method, args.amount, cfg)
    acc = accuracy(model, data.x_test, data.y_test)
    say(f"pruned: test accuracy {acc_before:.4f} -> {acc:.4f}")
    net = from_torch(model)
    stored = None
    if args.keep_masks:
        stored = masks_to_list(model, masks)
    else:
        net = compact_network(net)
    meta = {
        **meta,
        "data": args.data,
        "test_accuracy": f"{acc:.4f}",
        "pruning": f"recipe={recipe.name} ({args.recipe})"
        if recipe is not None
        else f"method={args.method} amount={args.amount} "
        f"finetune_epochs={args.finetune_epochs} epochs={args.epochs} seed={args.seed}",
    }
    path = save_model(net, args.out, masks=stored, meta=meta)
    info = {
        "out": str(path),
        "method": args.method,
        "shape_before": before.describe(),
        "shape_after": net.describe(),
        "test_accuracy_before": acc_before,
        "test_accuracy_after": acc,
        "hidden_neurons_before": before.num_hidden_neurons,
        "hidden_neurons_after": net.num_hidden_neurons,
        "nonzeros_before": before.num_weights,
        "nonzeros_after": net.num_weights,
        "mask_sparsity": mask_sparsity(masks),
    }
    if args.json:
        print_json(info)
    else:
        for k, v in info.items():
            print(f"{k:22s} {v:.4f}" if isinstance(v, float) else f"{k:22s} {v}")
    return 0
