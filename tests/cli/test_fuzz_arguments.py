"""Random argument values on every subcommand (hypothesis). The expensive work (training,
pruning, batch solving, verification, the demo) is replaced by a sentinel, so each example
checks only what happens before work starts: either a one-line ``nn2mip: error:`` and exit 2,
or the arguments are accepted and the work is reached. Never a traceback or an internal error.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nn2mip.cli import main
from tests.cli.bad_files import make_files


class Reached(BaseException):
    """Raised in place of the real work: BaseException, so the CLI's handlers let it through."""


def _stop(*_args: object, **_kwargs: object) -> None:
    raise Reached


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fuzz_args")
    f = make_files(root)
    f["tmp"] = str(root / "out")
    return f


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    import adversarial.batch
    import adversarial.report
    import adversarial.vnnlib_problem
    import nn2mip.cli.demo_flow
    import pruning.catalogue
    import pruning.training

    monkeypatch.setattr(pruning.training, "train", _stop)
    monkeypatch.setattr(pruning.catalogue, "run_method", _stop)
    monkeypatch.setattr(adversarial.batch, "run_batch", _stop)
    monkeypatch.setattr(adversarial.report, "build_report", _stop)
    monkeypatch.setattr(adversarial.vnnlib_problem, "verify_property", _stop)
    monkeypatch.setattr(nn2mip.cli.demo_flow, "run_demo", _stop)


NUMBERS = ["0", "1", "-1", "2", "0.5", "-0.5", "1e309", "nan", "inf", "-inf", "x", "", "3", "99999"]
PATHS = [
    "{model}",
    "{onnx}",
    "{short_relu}",
    "{dir}",
    "{file}",
    "{missing}",
    "{junk}",
    "{tmp}/o.safetensors",
    "{tmp}/o.onnx",
    "{tmp}/o.mps",
    "{db}",
    "{corrupt_db}",
    "/proc/nn2mip-x",
    "{prop}",
    "{prop_junk}",
    "{input64}",
]
WORDS = [
    "inf",
    "1",
    "symbolic",
    "interval",
    "bogus",
    "digits",
    "mnist",
    "adam",
    "targeted",
    "seed",
    "untargeted",
    "min-distortion",
    "magnitude",
    "auto",
    "mip",
    "0-2",
    "5-2",
]

OPTIONS = {
    "demo": ["--eps", "--images", "--time-limit", "--threads", "--save-dir"],
    "encode": [
        "--index",
        "--input",
        "--eps",
        "--norm",
        "--bounds",
        "--label",
        "--target",
        "--out",
        "--data",
        "--data-dir",
    ],
    "train": [
        "--hidden",
        "--epochs",
        "--lr",
        "--batch-size",
        "--optimizer",
        "--spr-alpha",
        "--stability",
        "--stability-norm",
        "--adv-eps",
        "--adv-weight",
        "--out",
        "--data",
    ],
    "prune": [
        "--method",
        "--amount",
        "--epochs",
        "--finetune-epochs",
        "--rounds",
        "--out",
        "--lr",
        "--data",
        "--keep-masks",
    ],
    "attack": [
        "--indices",
        "--eps",
        "--norm",
        "--problem",
        "--target",
        "--time-limit",
        "--threads",
        "--jobs",
        "--db",
        "--bounds",
        "--method",
        "--pgd-steps",
        "--data",
    ],
    "report": ["--out", "--pair"],
    "verify": ["--timeout", "--out", "--threads", "--bounds", "--method"],
}
POSITIONAL = {"encode": 1, "prune": 1, "attack": 1, "report": 1, "verify": 2}


@st.composite
def argvs(draw):
    cmd = draw(st.sampled_from(sorted(OPTIONS)))
    argv = [cmd] + [draw(st.sampled_from(PATHS)) for _ in range(POSITIONAL.get(cmd, 0))]
    for opt in draw(st.lists(st.sampled_from(OPTIONS[cmd]), max_size=5)):
        argv.append(opt)
        if opt == "--keep-masks":
            continue
        n = 2 if opt == "--pair" else 1
        argv += [draw(st.sampled_from(NUMBERS + PATHS + WORDS)) for _ in range(n)]
    return argv


@settings(
    max_examples=int(os.environ.get("NN2MIP_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(argv=argvs())
def test_random_arguments(argv, files, capsys, tmp_path_factory, monkeypatch) -> None:
    argv = [a.format(**files) for a in argv]
    monkeypatch.chdir(files["tmp"].rsplit("/", 1)[0])  # relative outputs land in the fixture
    try:
        rc = main(argv)
    except Reached:
        capsys.readouterr()
        return
    _, err = capsys.readouterr()
    if rc == 0:  # only encode does its (cheap) work for real, in the test's directory
        assert argv[0] == "encode", argv
        return
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("nn2mip: error: "), (argv, err)
    assert "internal error" not in err and "Traceback" not in err, (argv, err)
