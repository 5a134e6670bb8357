"""Hostile and mistaken files for the bad-input tests: models whose metadata disagrees with
their tensors, junk, damaged SQLite results files, properties of the wrong size."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from adversarial.store import ResultStore
from nn2mip.network import network_from_arrays
from nn2mip.onnx_io import save_onnx
from nn2mip.serialize import FORMAT, VERSION, save_network


def small_net(sizes: tuple[int, ...] = (64, 8, 8, 10), seed: int = 0):
    """A random ReLU net (no training: every case fails before any solve)."""
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(b, a)) / np.sqrt(a) for a, b in zip(sizes, sizes[1:], strict=False)]
    return network_from_arrays(ws, [rng.normal(size=w.shape[0]) * 0.1 for w in ws])


def raw_model(path: Path, tensors: dict[str, np.ndarray], **header: str) -> Path:
    """A .safetensors file with exactly these tensors and metadata, bypassing save_network."""
    meta = {"format": FORMAT, "version": VERSION, **header}
    save_file(tensors, str(path), metadata={k: v for k, v in meta.items() if v is not None})
    return path


def good_tensors(net) -> dict[str, np.ndarray]:
    out = {}
    for i, layer in enumerate(net.layers):
        out[f"layers.{i}.weight"] = layer.weight.copy()
        out[f"layers.{i}.bias"] = layer.bias.copy()
    return out


def results_row(i: int) -> dict[str, object]:
    """A complete results row (instance ``i``) for a store of the current schema."""
    return {
        "model_path": "m.safetensors",
        "model_id": "m",
        "model_sha256": "0" * 64,
        "dataset": "digits",
        "input_id": i,
        "eps": 0.05,
        "norm": "inf",
        "problem": "untargeted",
        "target": -1,
        "verdict": "robust",
        "total_time": 0.5 + i,
        "note": "x" * 200,  # long rows: the file spans many pages
    }


def make_files(root: Path) -> dict[str, str]:
    """Every file the corpus refers to by ``{name}``; returns name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    net = small_net()
    f: dict[str, Path] = {}
    f["model"] = save_network(net, root / "model.safetensors", meta={"data": "digits"})
    f["onnx"] = save_onnx(net, root / "model.onnx")
    f["wide"] = save_network(small_net((10, 4, 3)), root / "wide.safetensors")
    t = good_tensors(net)
    relu = [True, True, False]
    f["short_relu"] = raw_model(root / "short_relu.safetensors", t, relu=json.dumps(relu[:2]))
    f["long_relu"] = raw_model(root / "long_relu.safetensors", t, relu=json.dumps(relu + [True]))
    f["bad_json"] = raw_model(root / "bad_json.safetensors", t, relu="[true, true,")
    f["int_relu"] = raw_model(root / "int_relu.safetensors", t, relu="[1, 1, 0]")
    f["no_relu"] = raw_model(root / "no_relu.safetensors", t)
    f["no_format"] = raw_model(root / "no_format.safetensors", t, relu=json.dumps(relu), format="x")
    f["version9"] = raw_model(root / "version9.safetensors", t, relu=json.dumps(relu), version="9")
    f["bad_sizes"] = raw_model(
        root / "bad_sizes.safetensors", t, relu=json.dumps(relu), sizes="[64, 8, 8, 11]"
    )
    extra = {**t, "layers.3.weight": np.zeros((2, 10))}
    f["extra_tensor"] = raw_model(root / "extra_tensor.safetensors", extra, relu=json.dumps(relu))
    stray = {**t, "optimizer.state": np.zeros(3)}
    f["stray_tensor"] = raw_model(root / "stray_tensor.safetensors", stray, relu=json.dumps(relu))
    chain = {**t, "layers.1.weight": np.zeros((8, 7))}
    f["bad_chain"] = raw_model(root / "bad_chain.safetensors", chain, relu=json.dumps(relu))
    bias = {**t, "layers.0.bias": np.zeros(5)}
    f["bad_bias"] = raw_model(root / "bad_bias.safetensors", bias, relu=json.dumps(relu))
    nan = {**t, "layers.2.weight": np.full((10, 8), np.nan)}
    f["nan_model"] = raw_model(root / "nan_model.safetensors", nan, relu=json.dumps(relu))
    ints = {**t, "layers.0.weight": np.ones((8, 64), dtype=np.int32)}
    f["int_weights"] = raw_model(root / "int_weights.safetensors", ints, relu=json.dumps(relu))
    mask = {**t, "layers.0.mask": np.full((8, 64), 3, dtype=np.uint8)}
    f["bad_mask"] = raw_model(root / "bad_mask.safetensors", mask, relu=json.dumps(relu))
    nobias = {k: v for k, v in t.items() if k != "layers.1.bias"}
    f["no_bias"] = raw_model(root / "no_bias.safetensors", nobias, relu=json.dumps(relu))
    (root / "empty.safetensors").write_bytes(b"")
    f["empty"] = root / "empty.safetensors"
    (root / "junk.safetensors").write_bytes(b"\xff" * 40 + b"junk")
    f["junk"] = root / "junk.safetensors"
    (root / "junk.onnx").write_bytes(b"\x08\x07garbage\xff\xff\x00")
    f["junk_onnx"] = root / "junk.onnx"
    f["onnx_as_st"] = root / "onnx_named.safetensors"
    f["onnx_as_st"].write_bytes(Path(f["onnx"]).read_bytes())
    f["model_txt"] = root / "model.txt"
    f["model_txt"].write_bytes(Path(f["model"]).read_bytes())
    (root / "pickle.safetensors").write_bytes(b"\x80\x04K\x01.")
    f["pickle"] = root / "pickle.safetensors"

    f["dir"] = root / "a_dir"
    f["dir"].mkdir(exist_ok=True)
    f["file"] = root / "plain.txt"
    f["file"].write_text("not a directory\n")
    f["missing"] = root / "missing_thing"
    f["input64"] = root / "x64.txt"
    f["input64"].write_text(" ".join(["0.5"] * 64))
    f["input10"] = root / "x10.txt"
    f["input10"].write_text(" ".join(["0.5"] * 10))
    f["input_nan"] = root / "xnan.txt"
    f["input_nan"].write_text(" ".join(["nan"] * 64))
    f["input_text"] = root / "xtext.txt"
    f["input_text"].write_text("zero one two")
    f["input_big"] = root / "xbig.txt"
    f["input_big"].write_text(" ".join(["7"] * 64))
    np.save(root / "x_obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    f["input_pickle"] = root / "x_obj.npy"

    f["db"] = root / "results.sqlite"
    with ResultStore(f["db"]) as s:
        for i in range(3):
            s.add(results_row(i))
    f["empty_db"] = root / "empty_results.sqlite"
    ResultStore(f["empty_db"]).close()
    f["other_db"] = root / "other.sqlite"
    con = sqlite3.connect(f["other_db"])
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    f["corrupt_db"] = root / "corrupt.sqlite"
    with ResultStore(f["corrupt_db"]) as s:
        for i in range(300):
            s.add(results_row(i))
    _checkpoint(f["corrupt_db"])
    data = bytearray(f["corrupt_db"].read_bytes())
    page = 4096
    for k in range(3, len(data) // page):  # leave the header and schema pages alone
        data[k * page + 8 : k * page + 400] = b"\xa5" * 392
    f["corrupt_db"].write_bytes(bytes(data))

    x = np.full(64, 0.5)
    f["prop"] = _property(root / "prop.vnnlib", x, 0.01, 0, 10)
    f["prop_small"] = _property(root / "prop_small.vnnlib", np.full(3, 0.5), 0.01, 0, 10)
    f["prop_out"] = _property(root / "prop_out.vnnlib", x, 0.01, 0, 4)
    f["prop_junk"] = root / "junk.vnnlib"
    f["prop_junk"].write_text("(declare-const X_0 Real)\n(assert (<= X_0 ")
    return {k: str(v) for k, v in f.items()}


def _checkpoint(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()


def _property(path: Path, x: np.ndarray, eps: float, label: int, n_out: int) -> Path:
    lines = [f"(declare-const X_{i} Real)" for i in range(x.size)]
    lines += [f"(declare-const Y_{j} Real)" for j in range(n_out)]
    for i, v in enumerate(x):
        lines.append(f"(assert (>= X_{i} {float(v - eps)!r}))")
        lines.append(f"(assert (<= X_{i} {float(v + eps)!r}))")
    ors = " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(n_out) if j != label)
    lines.append(f"(assert (or {ors}))")
    path.write_text("\n".join(lines) + "\n")
    return path
