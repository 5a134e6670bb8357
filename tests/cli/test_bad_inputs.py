"""The bad-input corpus: every case is a hostile or mistaken command line that must end in
exactly one ``nn2mip: error: ...`` line naming the problem, a non-zero exit, no traceback, and
no change to files that already hold results. All of them fail before any training or solving,
so the whole corpus runs in seconds (in-process through ``main(argv)``; a few as subprocesses).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nn2mip.cli import main
from tests.cli.bad_files import make_files

ROOT = Path(__file__).resolve().parents[2]
UNWRITABLE = "/proc/nn2mip-test"  # no process can create files here, root included

M = "{model}"
DB = "{db}"


def _enc(*extra: str, model: str = M, src: tuple[str, ...] = ("--index", "0")) -> list[str]:
    return ["encode", model, *src, "--eps", "0.05", *extra]


def _att(*extra: str, models: tuple[str, ...] = (M,), db: str = DB) -> list[str]:
    return ["attack", *models, "--indices", "0-2", "--db", db, "--time-limit", "5", *extra]


def _ver(*extra: str, net: str = M, prop: str = "{prop}") -> list[str]:
    return ["verify", net, prop, *extra]


def _train(*extra: str, out: str = "{tmp}/t.safetensors") -> list[str]:
    return ["train", "--epochs", "1", "--out", out, *extra]


def _prune(*extra: str, model: str = M, out: str = "{tmp}/p.safetensors") -> list[str]:
    return ["prune", model, "--method", "magnitude", "--amount", "0.5", "--out", out, *extra]


# Models that must be refused wherever a model is read: (file key, words the message names).
BAD_MODELS = [
    ("short_relu", "relu"),
    ("long_relu", "relu"),
    ("bad_json", "relu"),
    ("int_relu", "relu"),
    ("no_relu", "relu"),
    ("no_format", "not an nn2mip model"),
    ("version9", "version"),
    ("bad_sizes", "sizes"),
    ("extra_tensor", "layers.3.weight"),
    ("stray_tensor", "optimizer.state"),
    ("bad_chain", "layers.1.weight"),
    ("bad_bias", "layers.0.bias"),
    ("nan_model", "nan"),
    ("int_weights", "dtype"),
    ("bad_mask", "layers.0.mask"),
    ("no_bias", "layer 1"),
    ("empty", "cannot read"),
    ("junk", "cannot read"),
    ("pickle", "cannot read"),
    ("onnx_as_st", "cannot read"),
    ("junk_onnx", "onnx"),
    ("model_txt", ".safetensors or .onnx"),
    ("missing", "not found"),
    ("dir", "directory"),
]

CASES: list[tuple[str, list[str], str]] = [
    # -- the command itself
    ("no command", [], "command"),
    ("unknown command", ["bogus"], "invalid choice"),
    ("unknown global option", ["--nope", "demo"], "--nope"),
    ("unknown demo option", ["demo", "--bogus"], "--bogus"),
    ("encode without arguments", ["encode"], "required"),
    # -- demo
    ("demo threads 0", ["demo", "--threads", "0"], "--threads"),
    ("demo threads negative", ["demo", "--threads", "-2"], "--threads"),
    ("demo threads text", ["demo", "--threads", "two"], "--threads"),
    ("demo images 0", ["demo", "--images", "0"], "--images"),
    ("demo images negative", ["demo", "--images", "-3"], "--images"),
    ("demo images too many", ["demo", "--images", "100000"], "100000"),
    ("demo images fraction", ["demo", "--images", "1.5"], "--images"),
    ("demo eps negative", ["demo", "--eps", "-1"], "--eps"),
    ("demo eps nan", ["demo", "--eps", "nan"], "--eps"),
    ("demo eps inf", ["demo", "--eps", "inf"], "--eps"),
    ("demo eps text", ["demo", "--eps", "abc"], "--eps"),
    ("demo time limit 0", ["demo", "--time-limit", "0"], "> 0"),
    ("demo time limit negative", ["demo", "--time-limit", "-5"], "--time-limit"),
    ("demo time limit inf", ["demo", "--time-limit", "inf"], "--time-limit"),
    ("demo save-dir is a file", ["demo", "--save-dir", "{file}"], "not a directory"),
    ("demo save-dir unwritable", ["demo", "--save-dir", UNWRITABLE], "cannot write"),
    ("demo save-dir under a file", ["demo", "--save-dir", "{file}/sub"], "is a file"),
    # -- encode
    ("encode target equals label", _enc("--label", "3", "--target", "3"), "equals --label"),
    ("encode target is the image's label", _enc("--target", "6"), "label"),
    (
        "encode target without label",
        _enc("--target", "2", src=("--input", "{input64}")),
        "needs --label",
    ),
    ("encode index negative", _enc(src=("--index", "-1")), "--index"),
    ("encode index too large", _enc(src=("--index", "99999")), "out of range"),
    ("encode index text", _enc(src=("--index", "abc")), "--index"),
    ("encode input missing", _enc(src=("--input", "{missing}")), "not found"),
    ("encode input is a directory", _enc(src=("--input", "{dir}")), "directory"),
    ("encode input not numbers", _enc(src=("--input", "{input_text}")), "cannot read"),
    ("encode input wrong size", _enc(src=("--input", "{input10}")), "64"),
    ("encode input nan", _enc(src=("--input", "{input_nan}")), "nan"),
    ("encode input pickled npy", _enc(src=("--input", "{input_pickle}")), "cannot read"),
    ("encode input outside domain", _enc(src=("--input", "{input_big}")), "--domain"),
    ("encode input and index", _enc(src=("--input", "{input64}", "--index", "0")), "not allowed"),
    ("encode no input", ["encode", M, "--eps", "0.1"], "required"),
    ("encode eps missing", ["encode", M, "--index", "0"], "--eps"),
    ("encode eps negative", ["encode", M, "--index", "0", "--eps", "-1"], ">= 0"),
    ("encode eps nan", ["encode", M, "--index", "0", "--eps", "nan"], "--eps"),
    ("encode norm 2", _enc("--norm", "2"), "--norm"),
    ("encode bounds bogus", _enc("--bounds", "bogus"), "bogus"),
    ("encode domain reversed", _enc("--domain", "1", "0"), "--domain"),
    ("encode domain nan", _enc("--domain", "nan", "1"), "--domain"),
    ("encode out is a directory", _enc("--out", "{dir}"), "directory"),
    ("encode out wrong suffix", _enc("--out", "{tmp}/m.txt"), ".mps or .lp"),
    ("encode out unwritable", _enc("--out", UNWRITABLE + "/m.mps"), "cannot write"),
    ("encode out under a file", _enc("--out", "{file}/m.mps"), "is a file"),
    ("encode data bogus", _enc("--data", "bogus"), "--data"),
    ("encode data-dir with digits", _enc("--data-dir", "{dir}"), "--data-dir"),
    ("encode mnist dir missing", _enc("--data", "mnist", "--data-dir", "{missing}"), "mnist"),
    ("encode mnist dir empty", _enc("--data", "mnist", "--data-dir", "{dir}"), "mnist"),
    ("encode label out of range", _enc("--label", "99", "--target", "0"), "--label 99"),
    ("encode target out of range", _enc("--label", "0", "--target", "99"), "--target 99"),
    ("encode model wrong input size", _enc(model="{wide}"), "64"),
    *[(f"encode model {k}", _enc(model="{" + k + "}"), w) for k, w in BAD_MODELS],
    # -- train
    ("train out is a directory", _train(out="{dir}"), "directory"),
    ("train out wrong suffix", _train(out="{tmp}/t.txt"), ".safetensors or .onnx"),
    ("train out unwritable", _train(out=UNWRITABLE + "/t.safetensors"), "cannot write"),
    ("train out under a file", _train(out="{file}/t.safetensors"), "is a file"),
    ("train out missing", ["train"], "--out"),
    ("train epochs 0", _train("--epochs", "0"), "--epochs"),
    ("train epochs negative", _train("--epochs", "-1"), "--epochs"),
    ("train hidden 0", _train("--hidden", "0"), "--hidden"),
    ("train hidden negative", _train("--hidden", "8", "-3"), "--hidden"),
    ("train hidden text", _train("--hidden", "x"), "--hidden"),
    ("train lr 0", _train("--lr", "0"), "--lr"),
    ("train lr negative", _train("--lr", "-1"), "--lr"),
    ("train lr nan", _train("--lr", "nan"), "--lr"),
    ("train batch size 0", _train("--batch-size", "0"), "--batch-size"),
    ("train optimizer", _train("--optimizer", "rmsprop"), "--optimizer"),
    ("train data bogus", _train("--data", "bogus"), "--data"),
    ("train mnist dir missing", _train("--data", "mnist", "--data-dir", "{missing}"), "mnist"),
    ("train data-dir with digits", _train("--data-dir", "{dir}"), "--data-dir"),
    ("train spr alpha 1", _train("--spr-alpha", "1"), "--spr-alpha"),
    ("train spr alpha 0", _train("--spr-alpha", "0"), "--spr-alpha"),
    ("train stability norm", _train("--stability-norm", "2"), "--stability-norm"),
    ("train stability bounds", _train("--stability-bounds", "exact"), "--stability-bounds"),
    ("train stability loss", _train("--stability-loss", "bogus"), "stability"),
    (
        "train interval stability on L1",
        _train("--stability", "1", "--stability-norm", "1"),
        "interval",
    ),
    ("train adv weight 0", _train("--adv-weight", "0"), "--adv-weight"),
    ("train adv weight 2", _train("--adv-weight", "2"), "--adv-weight"),
    ("train adv steps 0", _train("--adv-steps", "0"), "--adv-steps"),
    ("train adv norm", _train("--adv-norm", "2"), "--adv-norm"),
    ("train adv rows negative", _train("--adv-rows", "-1"), "--adv-rows"),
    ("train l1 negative", _train("--l1", "-1"), "--l1"),
    ("train seed negative", _train("--seed", "-1"), "--seed"),
    ("train stability eps negative", _train("--stability-eps", "-0.1"), "--stability-eps"),
    # -- prune
    (
        "prune method unknown",
        ["prune", M, "--method", "nope", "--amount", "0.5", "--out", "x.safetensors"],
        "--method",
    ),
    ("prune amount 1", _prune("--amount", "1"), "--amount"),
    ("prune amount negative", _prune("--amount", "-0.1"), "--amount"),
    ("prune amount nan", _prune("--amount", "nan"), "--amount"),
    ("prune out is a directory", _prune(out="{dir}"), "directory"),
    ("prune out unwritable", _prune(out=UNWRITABLE + "/p.safetensors"), "cannot write"),
    ("prune out wrong suffix", _prune(out="{tmp}/p.pt"), ".safetensors or .onnx"),
    ("prune out is the input", _prune(out=M), "input model"),
    ("prune keep masks as onnx", _prune("--keep-masks", out="{tmp}/p.onnx"), "masks"),
    ("prune epochs 0", _prune("--epochs", "0"), "--epochs"),
    ("prune finetune negative", _prune("--finetune-epochs", "-1"), "--finetune-epochs"),
    ("prune rounds 0", _prune("--rounds", "0"), "--rounds"),
    ("prune batch size 0", _prune("--batch-size", "0"), "--batch-size"),
    ("prune lr 0", _prune("--lr", "0"), "--lr"),
    ("prune data bogus", _prune("--data", "bogus"), "--data"),
    ("prune spr alpha 1", _prune("--spr-alpha", "1"), "--spr-alpha"),
    ("prune model for another data set", _prune(model="{wide}"), "inputs"),
    *[(f"prune model {k}", _prune(model="{" + k + "}"), w) for k, w in BAD_MODELS[::2]],
    # -- attack (the results file {db} already holds rows: it must come out unchanged)
    ("attack model listed twice", _att(models=(M, M)), "twice"),
    ("attack indices empty", ["attack", M, "--indices", "", "--db", DB], "indices"),
    ("attack indices reversed", _att("--indices", "5-2"), "empty"),
    ("attack indices text", _att("--indices", "x"), "indices"),
    ("attack indices huge range", _att("--indices", "0-99999999999"), "beyond any test set"),
    ("attack index too large", _att("--indices", "99999"), "out of range"),
    ("attack eps negative", _att("--eps", "-1"), "--eps"),
    ("attack eps nan", _att("--eps", "nan"), "--eps"),
    ("attack norm 2", _att("--norm", "2"), "--norm"),
    ("attack problem bogus", _att("--problem", "bogus"), "--problem"),
    ("attack target negative", _att("--problem", "targeted", "--target", "-1"), "--target"),
    ("attack target not a class", _att("--problem", "targeted", "--target", "99"), "target 99"),
    ("attack targets plan nothing", _att("--problem", "targeted", "--target", "6"), "nothing"),
    ("attack time limit 0", _att("--time-limit", "0"), "> 0"),
    ("attack threads 0", _att("--threads", "0"), "--threads"),
    ("attack jobs 0", _att("--jobs", "0"), "--jobs"),
    ("attack db is a directory", _att(db="{dir}"), "directory"),
    ("attack db unwritable", _att(db=UNWRITABLE + "/r.sqlite"), "cannot write"),
    ("attack db under a file", _att(db="{file}/r.sqlite"), "is a file"),
    ("attack db not sqlite", _att(db="{file}"), "not an sqlite"),
    ("attack db another program's", _att(db="{other_db}"), "another program"),
    ("attack db damaged", _att(db="{corrupt_db}"), "damaged"),
    ("attack db missing", ["attack", M], "--db"),
    ("attack bounds bogus", _att("--bounds", "bogus"), "bogus"),
    ("attack method bogus", _att("--method", "bogus"), "--method"),
    ("attack pgd steps 0", _att("--pgd-steps", "0"), "--pgd-steps"),
    ("attack pgd restarts 0", _att("--pgd-restarts", "0"), "--pgd-restarts"),
    ("attack data bogus", _att("--data", "bogus"), "--data"),
    ("attack mnist dir missing", _att("--data", "mnist", "--data-dir", "{missing}"), "mnist"),
    ("attack min-distortion eps 0", _att("--problem", "min-distortion", "--eps", "0"), "eps"),
    ("attack model for another data set", _att(models=("{wide}",)), "inputs"),
    ("attack dask timeout 0", _att("--dask-timeout", "0"), "--dask-timeout"),
    *[(f"attack model {k}", _att(models=("{" + k + "}",)), w) for k, w in BAD_MODELS[1::2]],
    # -- report
    ("report db missing", ["report", "{missing}", "--out", "{tmp}/rep"], "not found"),
    ("report db is a directory", ["report", "{dir}", "--out", "{tmp}/rep"], "directory"),
    ("report db not sqlite", ["report", "{file}", "--out", "{tmp}/rep"], "not an sqlite"),
    ("report db another program's", ["report", "{other_db}", "--out", "{tmp}/rep"], "another"),
    ("report db damaged", ["report", "{corrupt_db}", "--out", "{tmp}/rep"], "damaged"),
    ("report db without results", ["report", "{empty_db}", "--out", "{tmp}/rep"], "no results"),
    ("report out is a file", ["report", DB, "--out", "{file}"], "not a directory"),
    ("report out unwritable", ["report", DB, "--out", UNWRITABLE], "cannot write"),
    ("report out under a file", ["report", DB, "--out", "{file}/sub"], "is a file"),
    ("report pair unknown", ["report", DB, "--out", "{tmp}/rep", "--pair", "a", "b"], "--pair"),
    ("report out missing", ["report", DB], "--out"),
    ("report pair of one model", ["report", DB, "--out", "{tmp}/rep", "--pair", "m", "m"], "same"),
    # -- verify
    ("verify timeout 0", _ver("--timeout", "0"), "> 0, got 0"),
    ("verify timeout negative", _ver("--timeout", "-1"), "--timeout"),
    ("verify timeout nan", _ver("--timeout", "nan"), "--timeout"),
    ("verify timeout text", _ver("--timeout", "soon"), "--timeout"),
    ("verify timeout missing", _ver(), "--timeout"),
    ("verify threads 0", _ver("--timeout", "5", "--threads", "0"), "--threads"),
    ("verify bounds bogus", _ver("--timeout", "5", "--bounds", "bogus"), "bogus"),
    ("verify method bogus", _ver("--timeout", "5", "--method", "bogus"), "--method"),
    ("verify out is a directory", _ver("--timeout", "5", "--out", "{dir}"), "directory"),
    ("verify out unwritable", _ver("--timeout", "5", "--out", UNWRITABLE + "/r"), "cannot write"),
    ("verify out under a file", _ver("--timeout", "5", "--out", "{file}/r.txt"), "is a file"),
    ("verify out is the property", _ver("--timeout", "5", "--out", "{prop}"), "overwrite"),
    ("verify property missing", _ver("--timeout", "5", prop="{missing}"), "not found"),
    ("verify property is a directory", _ver("--timeout", "5", prop="{dir}"), "directory"),
    ("verify property junk", _ver("--timeout", "5", prop="{prop_junk}"), "junk.vnnlib"),
    ("verify property inputs", _ver("--timeout", "5", prop="{prop_small}"), "inputs"),
    ("verify property outputs", _ver("--timeout", "5", prop="{prop_out}"), "outputs"),
    ("verify onnx junk", _ver("--timeout", "5", net="{junk_onnx}"), "onnx"),
    ("verify net missing", _ver("--timeout", "5", net="{missing}"), "not found"),
    ("verify net short relu", _ver("--timeout", "5", net="{short_relu}"), "relu"),
    ("verify net bad json", _ver("--timeout", "5", net="{bad_json}"), "relu"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad_inputs")
    f = make_files(root)
    f["tmp"] = str(root / "out")
    return f


def _fill(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) for a in argv]


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_corpus_is_large_and_unique() -> None:
    assert len(CASES) >= 150
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "argv", "needle"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, argv, needle, files, capsys) -> None:
    before = {k: _digest(files[k]) for k in ("db", "model", "prop", "corrupt_db", "file")}
    t0 = time.perf_counter()
    rc = main(_fill(argv, files))
    elapsed = time.perf_counter() - t0
    out, err = capsys.readouterr()
    assert rc != 0, (name, out, err)
    lines = err.strip().splitlines()
    # Progress lines start with "[", the error is the one line after them; nothing else.
    errors = [ln for ln in lines if not ln.startswith("[")]
    assert len(errors) == 1, (name, err)
    assert errors[0].startswith("nn2mip: error: "), (name, err)
    assert "Traceback" not in err and "internal error" not in err, (name, err)
    assert needle.lower() in errors[0].lower(), (name, needle, errors[0])
    # Nothing already computed is lost, nothing was written.
    assert {k: _digest(files[k]) for k in before} == before, name
    assert not Path(files["tmp"]).exists() or not any(Path(files["tmp"]).iterdir()), name
    # Validation, not work: no training, no solve.
    assert elapsed < 20, (name, elapsed)


SUBPROCESS_CASES = [
    ("encode target equals label", _enc("--label", "3", "--target", "3"), "equals --label"),
    ("train out unwritable", _train(out=UNWRITABLE + "/t.safetensors"), "cannot write"),
    ("attack db damaged", _att(db="{corrupt_db}"), "damaged"),
    ("verify net short relu", _ver("--timeout", "5", net="{short_relu}"), "relu"),
    ("demo threads 0", ["demo", "--threads", "0"], "--threads"),
]


@pytest.mark.parametrize(
    ("name", "argv", "needle"), SUBPROCESS_CASES, ids=[c[0] for c in SUBPROCESS_CASES]
)
def test_bad_input_subprocess(name, argv, needle, files) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("NN2MIP_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "nn2mip.cli", *_fill(argv, files)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0, name
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("nn2mip: error: "), (name, proc.stderr)
    assert needle.lower() in lines[0].lower(), (name, proc.stderr)
    assert proc.stdout == "", name


def test_damaged_store_keeps_its_rows_readable_elsewhere(files) -> None:
    """The good results file is untouched after every refused run: its 3 rows remain."""
    from adversarial.store import ResultStore

    with ResultStore(files["db"], readonly=True) as s:
        assert s.count() == 3
