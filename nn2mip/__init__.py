"""nn2mip: prune ReLU networks, encode them as big-M MIPs, solve them with HiGHS."""

from typing import Any


def __getattr__(name: str) -> Any:
    # ``nn2mip.optimize`` on first use only: importing the package (the CLI does) stays cheap.
    if name == "optimize":
        from nn2mip.optimization import optimize

        return optimize
    raise AttributeError(f"module 'nn2mip' has no attribute {name!r}")
