"""Fixtures for the batch engine: a dense and a pruned digits net saved as model files."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from nn2mip.datasets import Dataset, load_digits
from nn2mip.network import Network
from nn2mip.serialize import save_network
from nn2mip.torch_io import from_torch
from pruning.compact import compact_network
from pruning.magnitude import magnitude_masks
from pruning.structured import neuron_masks
from pruning.training import accuracy, make_mlp, train


@pytest.fixture(scope="session")
def digits_data() -> Dataset:
    return load_digits()


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory, digits_data: Dataset) -> dict[str, Path]:
    """``dense`` (64-24-24-10, accuracy in its metadata) and ``pruned`` (compacted) files."""
    torch.set_num_threads(1)
    d = digits_data
    dense = train(make_mlp(64, [24, 24], 10, seed=3), d.x_train, d.y_train, epochs=6, lr=3e-3)
    pruned = copy.deepcopy(dense)
    masks = magnitude_masks(pruned, 0.5, existing=neuron_masks(pruned, 0.4))
    train(pruned, d.x_train, d.y_train, epochs=2, masks=masks)
    out = tmp_path_factory.mktemp("models")
    acc = accuracy(dense, d.x_test, d.y_test)
    files = {
        "dense": save_network(from_torch(dense), out / "dense.safetensors", meta={"accuracy": acc}),
        "pruned": save_network(compact_network(from_torch(pruned)), out / "pruned.safetensors"),
    }
    return files


@pytest.fixture(scope="session")
def nets(model_files: dict[str, Path]) -> dict[str, Network]:
    from nn2mip.serialize import load_network

    return {k: load_network(p) for k, p in model_files.items()}


@pytest.fixture(scope="session")
def batch_spec(model_files: dict[str, Path]):
    """2 models x 6 inputs x 2 eps, untargeted L-inf: 24 instances, a mix of verdicts."""
    from adversarial.batch import BatchSpec

    return BatchSpec(
        models=[str(model_files["dense"]), str(model_files["pruned"])],
        indices=list(range(6)),
        eps=[0.04, 0.12],
        norms=["inf"],
        problems=["untargeted"],
        time_limit=30.0,
    )


@pytest.fixture(scope="session")
def reference_db(tmp_path_factory: pytest.TempPathFactory, batch_spec) -> Path:
    """The batch run in-process (PGD on) into a finished results file."""
    from adversarial.batch import run_batch

    db = tmp_path_factory.mktemp("ref") / "ref.sqlite"
    s = run_batch(batch_spec, db, jobs=1, progress=False)
    assert s.done == s.planned == 24 and not s.errors
    return db
