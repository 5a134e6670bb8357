"""``nn2mip prune``: apply one method of the pruning catalogue to a saved model and write the
compacted (physically smaller) result."""

from __future__ import annotations

import argparse

from nn2mip.commands.common import nonneg_float, positive_float, print_json
from nn2mip.errors import InvalidInputError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from pruning.catalogue import FROM_SCRATCH, METHODS

    p = sub.add_parser("prune", help="prune a model with a catalogue method and compact it")
    p.add_argument("model", help="model file written by nn2mip (.safetensors)")
    p.add_argument(
        "--method",
        help=f"one of: {', '.join(METHODS)} ({', '.join(FROM_SCRATCH)} retrain the model's "
        "architecture from a fresh initialization)",
    )
    p.add_argument(
        "--amount",
        type=float,
        help="fraction in [0, 1) of weights (of hidden neurons for neuron/group-lasso/spr)",
    )
    p.add_argument(
        "--recipe",
        help="a pruning recipe (TOML, e.g. data/recipes/seed_2x100.toml) in place of --method "
        "and its options (and --seed: the recipe's seed is used); its [dense] table is not "
        "used, MODEL is pruned",
    )
    p.add_argument(
        "--finetune-epochs",
        type=int,
        default=10,
        help="fine-tuning epochs (the whole run for gradual)",
    )
    p.add_argument("--epochs", type=int, default=20, help="training epochs (from-scratch, l1...)")
    p.add_argument("--data", default="digits", help="digits or mnist")
    p.add_argument("--data-dir", default=None, help="directory of the MNIST IDX files")
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--optimizer", default="adam", help="adam or sgd")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lam", type=nonneg_float, default=1e-3, help="l1 / group-lasso strength")
    p.add_argument("--spr-lambda", type=nonneg_float, default=0.05)
    p.add_argument("--spr-alpha", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=3, help="lottery: pruning rounds")
    p.add_argument("--rewind", type=int, default=0, help="lottery: rewind step (0 = init)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-masks", action="store_true", help="save uncompacted, with masks")
    p.add_argument("--out", required=True, help="output model file (.safetensors)")
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from nn2mip.commands.train import validate_common
    from nn2mip.datasets import load_dataset
    from nn2mip.serialize import save_network
    from nn2mip.torch_io import from_torch
    from pruning.catalogue import FROM_SCRATCH, METHODS, MethodConfig, run_method
    from pruning.compact import compact_network
    from pruning.masks import load_model, mask_sparsity, masks_to_list
    from pruning.train import accuracy, linear_layers, make_mlp

    if args.recipe is not None:
        if args.method is not None or args.amount is not None:
            raise InvalidInputError("give either --recipe or --method and --amount, not both")
        from pruning.recipe import load_recipe

        recipe = load_recipe(args.recipe)
        args.method, args.amount = "recipe", 0.0  # the recipe's steps carry their own
    elif args.method is None or args.amount is None:
        raise InvalidInputError("give --method and --amount, or --recipe FILE")
    elif args.method not in METHODS:
        raise InvalidInputError(f"unknown method {args.method!r}; choose from {', '.join(METHODS)}")
    if not 0.0 <= args.amount < 1.0:
        raise InvalidInputError(f"--amount must be in [0, 1), got {args.amount}")
    if args.finetune_epochs < 0 or args.epochs < 1 or args.rounds < 1:
        raise InvalidInputError("epochs and rounds must be positive (finetune epochs >= 0)")
    if not 0.0 < args.spr_alpha < 1.0:
        raise InvalidInputError(f"--spr-alpha must be in (0, 1), got {args.spr_alpha}")
    validate_common(args)
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
    if args.recipe is not None:
        from pruning.recipe import run_recipe

        result = run_recipe(recipe, data.x_train, data.y_train, model)
        model, masks = result.model, result.masks
    else:
        model, masks = run_method(model, data.x_train, data.y_train, args.method, args.amount, cfg)
    acc = accuracy(model, data.x_test, data.y_test)
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
        if args.recipe is not None
        else f"method={args.method} amount={args.amount} "
        f"finetune_epochs={args.finetune_epochs} epochs={args.epochs} seed={args.seed}",
    }
    path = save_network(net, args.out, masks=stored, meta=meta)
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
