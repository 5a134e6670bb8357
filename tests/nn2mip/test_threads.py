"""torch_threads sets the count for its block and restores the caller's, even on an error."""

from __future__ import annotations

import pytest
import torch

from nn2mip.threads import torch_threads


def test_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    outer = 3 if before != 3 else 2
    torch.set_num_threads(outer)
    try:
        with torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == outer
        with pytest.raises(RuntimeError), torch_threads(1):
            raise RuntimeError("boom")
        assert torch.get_num_threads() == outer
    finally:
        torch.set_num_threads(before)
