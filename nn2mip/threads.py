"""Torch's intra-op thread count, set for a block and restored after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block on ``n`` torch threads, restoring the previous count after.

    The bound passes here multiply batches of a few hundred rows: on a machine whose other
    cores are busy, extra intra-op threads only add contention (alpha-CROWN on a 256x4 net took
    18 s on 2 threads beside one busy core, 1.7 s on 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
