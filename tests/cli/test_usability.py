"""What users expect of the command line beyond errors: every option documented with its
default, --version, quiet runs, verify's short output with --out, named MPS/LP columns,
MNIST found without --data-dir."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import numpy as np
import pytest

from nn2mip.cli import COMMANDS, build_parser, main
from nn2mip.datasets import DATA_ENV, find_mnist_dir
from nn2mip.errors import InvalidInputError
from nn2mip.serialize import save_network
from tests.cli.bad_files import small_net


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_has_help_and_shows_its_default(capsys) -> None:
    for name, p in _subparsers().items():
        for action in p._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.dest)
        assert main([name, "--help"]) == 0
        text = capsys.readouterr().out
        for action in p._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
                assert "(default:" in text, (name, action.dest)
    assert re.search(r"default: 0\.05", _help("demo", capsys))


def _help(cmd: str, capsys) -> str:
    main([cmd, "--help"])
    return capsys.readouterr().out


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("nn2mip ")


def test_encode_writes_named_columns_and_objective(tmp_path, capsys) -> None:
    import highspy

    model = save_network(small_net(), tmp_path / "m.safetensors")
    lp = tmp_path / "m.lp"
    argv = ["encode", str(model), "--index", "0", "--eps", "0.05", "--target", "2", "-q"]
    assert main([*argv, "--norm", "1", "--out", str(lp)]) == 0
    text = lp.read_text()
    # label of digits test image 0 is 6: objective y_2 - y_6
    assert re.search(r"obj:\s*\+1 y_2 -1 y_6", text), text[:300]
    for name in ("x_0", "x_63", "t_0", "y_9"):
        assert re.search(rf"\b{name}\b", text), name
    assert re.search(r"\bz_1_\d+\b", text)
    # Read back by HiGHS: same column count, names kept.
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.readModel(str(lp))
    names = set(h.allVariableNames())
    assert {"x_0", "y_2", "y_6"} <= names
    assert not [n for n in names if n.startswith("c_")]
    capsys.readouterr()


def test_verify_prints_only_the_verdict_with_out(tmp_path, capsys) -> None:
    from tests.cli.bad_files import _property

    net = small_net()
    model = save_network(net, tmp_path / "m.safetensors")
    x = np.full(64, 0.5)
    label = int(net.predict(x)[0])
    prop = _property(tmp_path / "p.vnnlib", x, 0.5, label, 10)  # a wide ball: sat
    out = tmp_path / "r.txt"
    rc = main(["verify", str(model), str(prop), "--timeout", "60", "--out", str(out), "-q"])
    assert rc == 0
    captured = capsys.readouterr()
    assert captured.out.strip() in ("sat", "unsat", "timeout", "unknown")
    assert captured.err == ""  # --quiet
    assert out.read_text().splitlines()[0] == captured.out.strip()
    if captured.out.strip() == "sat":
        assert len(out.read_text().splitlines()) > 1


def test_verify_reports_its_stages_on_stderr(tmp_path, capsys) -> None:
    """Without --quiet, verify says which stage runs, with elapsed time; stdout keeps only
    the verdict (with --out)."""
    from tests.cli.bad_files import _property

    net = small_net()
    model = save_network(net, tmp_path / "m.safetensors")
    x = np.full(64, 0.5)
    label = int(net.predict(x)[0])
    prop = _property(tmp_path / "p.vnnlib", x, 0.01, label, 10)  # a small ball: bounds decide
    out = tmp_path / "r.txt"
    rc = main(["verify", str(model), str(prop), "--timeout", "60", "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    *lines, summary = captured.err.splitlines()
    assert all(re.match(r"\[\s*\d+\.\d s\] ", line) for line in lines), lines
    assert summary.startswith("nn2mip: unsat")
    assert any("bounds (" in line for line in lines), lines
    assert any("bounds done in" in line for line in lines), lines
    assert captured.out.strip() == out.read_text().splitlines()[0]


def test_mnist_found_through_the_environment(tmp_path, monkeypatch) -> None:
    import nn2mip.datasets

    # A checkout with no data beside it, so only the environment can point at MNIST.
    monkeypatch.setattr(nn2mip.datasets, "_REPO", tmp_path / "checkout")
    d = tmp_path / "data" / "mnist"
    d.mkdir(parents=True)
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    assert find_mnist_dir() == d
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(InvalidInputError, match="looked in .*nowhere.*checkout.*NN2MIP_DATA"):
        find_mnist_dir()
    with pytest.raises(InvalidInputError, match="does not exist"):
        find_mnist_dir(tmp_path / "given")


def test_out_of_memory_is_a_one_line_error(tmp_path, monkeypatch, capsys) -> None:
    """torch reports a failed allocation as a RuntimeError: one line, not 'internal error'.
    (Simulated: a real 256 GB request could be granted lazily and then OOM-kill the run.)"""
    import pruning.training

    def huge(*_a: object, **_k: object) -> None:
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 256 GB")

    monkeypatch.setattr(pruning.training, "make_mlp", huge)
    rc = main(["train", "--hidden", "1000000000", "--out", str(tmp_path / "t.safetensors"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("nn2mip: error: out of memory") and "\n" not in err


def _listed_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub._choices_actions}


def test_fast_listing_matches_the_commands() -> None:
    """``nn2mip --help`` lists the commands from ``COMMANDS`` without importing them: the same
    names, order and help as the commands' own parsers give."""
    real = _listed_help(build_parser())
    assert list(real) == list(COMMANDS)
    assert _listed_help(build_parser("")) == real == {n: h for n, (_, h) in COMMANDS.items()}


def test_help_does_not_import_torch() -> None:
    """Start-up speed: listing the commands must not load torch, pruning or adversarial."""
    code = (
        "import sys, contextlib, io\n"
        "from nn2mip.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
        "heavy = ('torch', 'pruning', 'adversarial', 'highspy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
