"""A new user's first hour (issue 14): the stated commands work as written, distances are honoured end to
end, big-ann-benchmarks files import, the Python API gives the CLI's codes, fingerprints are stable."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import vecspread
from conftest import REPO_ROOT, assert_one_line_error, cli_ok, run_cli
from vecspread.errors import ConfigError
from vecspread.io.artifacts import write_artifact

TINY_CAT = ("--epochs", "1", "--dint", "32", "--val-size", "0", "--kneg", "5", "--threads", "1")


# --------------------------------------------------------------------------------------------
# the shortest pipeline: no -o anywhere, the method defaults to the catalyzer


def test_shortest_pipeline_needs_no_output_names(syn, tmp_path):
    shutil.copy(syn.base, tmp_path / "toy_base.fvecs")
    shutil.copy(syn.queries, tmp_path / "toy_query.fvecs")
    steps = [
        (("import", "toy_base.fvecs", "--queries", "toy_query.fvecs"), "toy.h5"),
        (("gt", "toy.h5"), "toy.gt.h5"),
        (("train", "toy.h5", "--dout", "16", *TINY_CAT), "toy.catalyzer.model.h5"),
        (("encode", "toy.catalyzer.model.h5", "toy.h5"), "toy.catalyzer.codes.h5"),
        (("search", "toy.catalyzer.codes.h5", "toy.h5"), "toy.catalyzer.res.h5"),
    ]
    for argv, name in steps:
        rc, _, err = run_cli(*argv, cwd=tmp_path)
        assert rc == 0, err
        assert f"output: {name} (named after the input" in err, err
        assert (tmp_path / name).is_file()
    rc, out, err = run_cli("eval", "toy.catalyzer.res.h5", "toy.gt.h5", "--json", cwd=tmp_path)
    assert rc == 0 and json.loads(out)["codec"] == "lattice", err  # the catalyzer's own lattice codec


def test_the_stated_command_works_exactly_as_written(syn, tmp_path):
    """`vecspread train deep1m.h5 --dout 24 --lam 0.02`, on a copy of a small dataset named deep1m.h5."""
    shutil.copy(syn.h5, tmp_path / "deep1m.h5")
    rc, _, err = run_cli("train", "deep1m.h5", "--dout", "24", "--lam", "0.02", cwd=tmp_path)
    assert rc == 0, err
    with h5py.File(tmp_path / "deep1m.catalyzer.model.h5", "r") as f:
        params = json.loads(f.attrs["params"])
    assert params["method"] == "catalyzer" and params["dout"] == 24 and params["lam"] == 0.02


def test_a_derived_name_never_replaces_an_input(pipeline, tmp_path):
    shutil.copy(pipeline.rot32, tmp_path / "x.model.h5")
    shutil.copy(pipeline.data.h5, tmp_path / "x.sign.codes.h5")  # the dataset happens to have the derived name
    before = (tmp_path / "x.sign.codes.h5").read_bytes()
    rc, _, err = run_cli("encode", "x.model.h5", "x.sign.codes.h5", "-c", "sign", cwd=tmp_path)
    line = assert_one_line_error(rc, err.splitlines()[-1] + "\n")
    assert "also an input" in line or "also another input" in line, line
    assert (tmp_path / "x.sign.codes.h5").read_bytes() == before


# --------------------------------------------------------------------------------------------
# distances honoured end to end


def _spread_norms(x: np.ndarray, seed: int) -> np.ndarray:
    """The rows of ``x`` made unit, then scaled by factors drawn uniformly in [0.5, 2]."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    return (unit * np.random.default_rng(seed).uniform(0.5, 2.0, (len(x), 1))).astype(np.float32)


@pytest.fixture(scope="module")
def angular_pair(tmp_path_factory) -> tuple[Path, Path]:
    """The same angular dataset twice: unit-norm rows, and the same rows with norms spread x0.5-2."""
    d = tmp_path_factory.mktemp("angular")
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(12, 32))
    xb = (centres[rng.integers(0, 12, 1500)] + 0.4 * rng.normal(size=(1500, 32))).astype(np.float32)
    xl = (centres[rng.integers(0, 12, 1500)] + 0.4 * rng.normal(size=(1500, 32))).astype(np.float32)
    xq = (centres[rng.integers(0, 12, 60)] + 0.4 * rng.normal(size=(60, 32))).astype(np.float32)
    files = []
    for name, transform in (("unit", lambda x, s: x / np.linalg.norm(x, axis=1, keepdims=True)),
                            ("spread", _spread_norms)):
        path = d / f"{name}.h5"
        with write_artifact(path, "dataset", attrs={"distance": "angular"}) as f:
            for i, (key, x) in enumerate((("train", xb), ("learn", xl), ("test", xq))):
                f.create_dataset(key, data=transform(x, i).astype(np.float32))
        cli_ok("gt", path, "-k", 10, "-o", d / f"{name}.gt.h5")
        files.append(path)
    return files[0], files[1]


ANGULAR_METHODS = {
    "pca-lattice": (("-m", "pca", "--dout", "16"), ("-c", "lattice", "--bits", "32")),
    "itq": (("-m", "itq", "--bits", "32"), ()),
    "pq": (("-m", "pq", "--bits", "32"), ()),
    "lsh": (("-m", "lsh", "--bits", "32"), ()),
    "catalyzer": (("-m", "catalyzer", "--dout", "16", "--bits", "32", *TINY_CAT), ()),
}


@pytest.mark.parametrize("method", ANGULAR_METHODS)
def test_angular_recall_does_not_depend_on_the_norms(angular_pair, tmp_path, method):
    train_opts, encode_opts = ANGULAR_METHODS[method]
    recalls = []
    for data in angular_pair:
        name = data.stem
        model, codes, res = (tmp_path / f"{name}.{k}.h5" for k in ("model", "codes", "res"))
        cli_ok("train", data, *train_opts, "-o", model)
        cli_ok("encode", model, data, *encode_opts, "-o", codes)
        cli_ok("search", codes, data, "-k", 10, "-o", res)
        recalls.append(json.loads(cli_ok("eval", res, data.with_name(f"{name}.gt.h5"), "--at", "1,10",
                                         "--json"))["recall"]["10"])
    assert abs(recalls[0] - recalls[1]) <= 0.01, recalls


def test_angular_ground_truth_is_the_cosine_one(angular_pair, tmp_path):
    unit, spread = angular_pair
    with h5py.File(unit.with_name("unit.gt.h5"), "r") as a, h5py.File(spread.with_name("spread.gt.h5"), "r") as b:
        assert (a["neighbors"][:, :5] == b["neighbors"][:, :5]).mean() > 0.99


@pytest.fixture(scope="module")
def dot_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dot") / "ip.h5"
    rng = np.random.default_rng(3)
    with write_artifact(path, "dataset", attrs={"distance": "dot"}) as f:
        for key, n in (("train", 800), ("learn", 800), ("test", 20)):
            f.create_dataset(key, data=(rng.normal(size=(n, 16)) * rng.uniform(0.2, 3, (n, 1))).astype(np.float32))
    return path


def test_a_dot_dataset_refuses_a_method_that_ranks_by_l2(dot_dataset, tmp_path):
    rc, _, err = run_cli("train", dot_dataset, "-m", "pca", "-o", tmp_path / "m.h5")
    line = assert_one_line_error(rc, err)
    assert "inner-product (dot) dataset" in line and "simple-lsh" in line and "--any-distance" in line
    cli_ok("train", dot_dataset, "-m", "pca", "--any-distance", "-o", tmp_path / "m.h5")  # a deliberate baseline
    cli_ok("train", dot_dataset, "-m", "simple-lsh", "-o", tmp_path / "s.h5")


def test_a_file_without_a_distance_says_what_was_assumed(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "ann.hdf5"
    with h5py.File(path, "w") as f:
        f["train"] = rng.normal(size=(300, 8)).astype(np.float32)
        f["test"] = rng.normal(size=(5, 8)).astype(np.float32)
    rc, _, err = run_cli("train", path, "-m", "pca", "-o", tmp_path / "m.h5")
    assert rc == 0 and "records no distance attribute: treated as euclidean" in err, err


# --------------------------------------------------------------------------------------------
# big-ann-benchmarks files


def _bigann(path: Path, header: tuple[int, int], *arrays: np.ndarray) -> Path:
    with open(path, "wb") as f:
        np.array(header, "<u4").tofile(f)
        for a in arrays:
            a.tofile(f)
    return path


def test_big_ann_benchmarks_files_without_extensions_and_their_ground_truth(tmp_path):
    rng = np.random.default_rng(1)
    xb = rng.integers(0, 255, (400, 16)).astype(np.uint8)
    xq = rng.integers(0, 255, (12, 16)).astype(np.uint8)
    d2 = ((xq[:, None, :].astype(np.int64) - xb[None].astype(np.int64)) ** 2).sum(-1)
    ids = np.argsort(d2, axis=1, kind="stable")[:, :10].astype("<i4")
    dist = np.sqrt(np.take_along_axis(d2, ids, 1)).astype("<f4")
    _bigann(tmp_path / "base", xb.shape, xb)
    _bigann(tmp_path / "query", xq.shape, xq)
    _bigann(tmp_path / "GT.public.ibin", ids.shape, ids, dist)  # the layout: ids, then distances
    _bigann(tmp_path / "GT", ids.shape, ids, dist)
    out = tmp_path / "d.h5"
    cli_ok("import", tmp_path / "base", "--queries", tmp_path / "query", "--format", "u8bin",
           "--groundtruth", tmp_path / "GT.public.ibin", "-o", out)
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["neighbors"][()], ids)
        np.testing.assert_allclose(f["distances"][()], dist, rtol=1e-6)
        assert f["train"].dtype == np.uint8
    rc, _, err = run_cli("import", tmp_path / "base", "--queries", tmp_path / "query", "--format", "u8bin",
                         "--groundtruth", tmp_path / "GT", "-o", tmp_path / "e.h5")
    assert "--groundtruth-format" in assert_one_line_error(rc, err)
    cli_ok("import", tmp_path / "base", "--queries", tmp_path / "query", "--format", "u8bin",
           "--groundtruth", tmp_path / "GT", "--groundtruth-format", "ibin", "-o", tmp_path / "e.h5")


# --------------------------------------------------------------------------------------------
# the Python API


def test_import_vecspread_stays_light():
    import subprocess
    import sys

    code = "import sys, vecspread; print(sorted(m for m in ('torch', 'faiss', 'h5py', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(vecspread.__all__) >= {"Index", "load", "Catalyzer", "PCA", "LatticeCodec", "SignCodec", "PQCodec"}


@pytest.mark.parametrize("method, codec, train_opts, encode_opts, api", [
    ("pca", "lattice", ("--dout", "16"), ("--bits", "32"),
     lambda: vecspread.Index(vecspread.PCA(dout=16), vecspread.LatticeCodec(bits=32))),
    ("lsh", None, ("--bits", "32"), (), lambda: vecspread.Index.from_method("lsh", bits=32)),
    ("pq", None, ("--bits", "32"), (), lambda: vecspread.Index.from_method("pq", bits=32)),
    ("catalyzer", None, ("--dout", "16", "--bits", "32", *TINY_CAT), (),
     lambda: vecspread.Index.from_method("catalyzer", dout=16, bits=32, epochs=1, dint=32, val_size=0, kneg=5)),
])
def test_api_and_cli_give_identical_codes_and_results(pipeline, tmp_path, method, codec, train_opts, encode_opts, api):
    data = pipeline.data.h5
    model, codes, res = tmp_path / "m.h5", tmp_path / "c.h5", tmp_path / "r.h5"
    cli_ok("train", data, "-m", method, *train_opts, "-o", model)
    cli_ok("encode", model, data, *(("-c", codec) if codec else ()), *encode_opts, "-o", codes)
    cli_ok("search", codes, data, "-k", 10, "-o", res)
    with h5py.File(data, "r") as f:
        xt, xb, xq = f["learn"][()] if "learn" in f else f["train"][()], f["train"][()], f["test"][()]
    from vecspread.runtime import threads_within

    with threads_within(1):  # as the CLI runs (--threads 1 for the catalyzer): the same float reductions
        index = api().train(xt.astype(np.float32)).add(xb)
        D, I = index.search(xq, 10)
    with h5py.File(codes, "r") as f:
        np.testing.assert_array_equal(index.codes, f["codes"][()])
    with h5py.File(res, "r") as f:
        np.testing.assert_array_equal(I, f["neighbors"][()])
        np.testing.assert_array_equal(D, f["distances"][()])
    # what the API saves, the CLI reads, and the other way round
    saved = index.save(str(tmp_path / "api.codes.h5"))
    cli_ok("search", saved, data, "-k", 10, "-o", tmp_path / "r2.h5")
    with h5py.File(tmp_path / "r2.h5", "r") as f:
        np.testing.assert_array_equal(I, f["neighbors"][()])
    again = vecspread.load(str(codes))
    with threads_within(1):
        np.testing.assert_array_equal(again.search(xq, 10)[1], I)


def test_estimators_follow_scikit_learn(pipeline):
    with h5py.File(pipeline.data.h5, "r") as f:
        x = f["train"][()].astype(np.float32)
    pca = vecspread.PCA(dout=8)
    assert pca.get_params() == {"dout": 8, "rotate": False}
    assert pca.set_params(dout=4) is pca and pca.dout == 4
    y = pca.fit(x).transform(x)
    assert y.shape == (len(x), 4) and y.dtype == np.float32
    np.testing.assert_array_equal(vecspread.PCA(dout=4).fit_transform(x), y)
    with pytest.raises(ConfigError, match="--dout must be at least 1"):
        vecspread.PCA(dout=0)


def test_index_refuses_work_before_training():
    index = vecspread.Index(vecspread.PCA(dout=4), vecspread.SignCodec())
    with pytest.raises(ConfigError, match="train the index first"):
        index.add(np.zeros((3, 8), np.float32))


# --------------------------------------------------------------------------------------------
# stable fingerprints


def test_a_dataset_with_strings_keeps_its_fingerprint_and_searches(pipeline, tmp_path):
    data = tmp_path / "texts.h5"
    shutil.copy(pipeline.data.h5, data)
    with h5py.File(data, "r+") as f:
        f.create_dataset("texts", data=np.array([f"query {i}" for i in range(40)], dtype=h5py.string_dtype()))
        from vecspread.io import fingerprints

        fingerprints.record(f)
    from vecspread.io.artifacts import open_artifact

    prints = []
    for _ in range(2):
        with open_artifact(data, "dataset") as art:
            prints.append(art.fingerprint)
        with h5py.File(data, "r") as f:
            prints.append(fingerprints.compute(f))
    assert len(set(prints)) == 1, prints
    cli_ok("encode", pipeline.rot32, data, "-c", "sign", "-o", tmp_path / "c.h5")
    cli_ok("search", tmp_path / "c.h5", data, "-k", 5, "-o", tmp_path / "r.h5")


def test_a_changed_input_under_the_same_name_says_what_changed(pipeline, tmp_path):
    data = tmp_path / "data.h5"
    shutil.copy(pipeline.data.h5, data)
    cli_ok("encode", pipeline.rot32, data, "-c", "sign", "-o", tmp_path / "c.h5")
    with h5py.File(data, "r+") as f:  # re-imported with other queries, say
        f["test"][0, 0] += 1
        from vecspread.io import fingerprints

        fingerprints.record(f)
    rc, _, err = run_cli("search", tmp_path / "c.h5", data, "-k", 5, "-o", tmp_path / "r.h5")
    line = assert_one_line_error(rc, err)
    assert "as it was before" in line and "'test' changed" in line, line
    assert os.path.basename(str(data)) in line


# --------------------------------------------------------------------------------------------
# help and messages


def test_flags_show_no_value_type_in_help():
    rc, out, _ = run_cli("gt", "--help")
    assert rc == 0 and "--json" in out and "<bool>" not in out


def test_a_bad_method_name_reads_cleanly():
    rc, _, err = run_cli("train", "x.h5", "-m", "PCA")
    line = assert_one_line_error(rc, err)
    assert "'PCA' is not one of" in line and "Value error" not in line


def test_help_shows_the_plot_extra_with_its_brackets():
    rc, out, _ = run_cli("bench", "--help")
    assert "vecspread[plot]" in " ".join(out.split()).replace("│", "").replace(" ", "")


def test_a_missing_torch_is_an_install_hint_not_a_bug(pipeline, tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['vecspread', 'train', sys.argv[1], '-m', "
            "'catalyzer', '-o', sys.argv[2]]; from vecspread.entry import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, str(pipeline.data.h5), str(tmp_path / "m.h5")],
                          capture_output=True, text=True, timeout=120)
    line = assert_one_line_error(proc.returncode, proc.stderr.splitlines()[-1] + "\n")
    assert "torch is not installed" in line and "download.pytorch.org/whl/cpu" in line


def test_the_demo_says_how_long_it_takes(monkeypatch, tmp_path):
    from vecspread.stages import demo

    lines: list[str] = []

    class Lines:
        def log(self, line: str) -> None:
            lines.append(line)

    monkeypatch.setattr(demo, "CONFIGS", [])
    demo.run_demo(str(tmp_path), progress=Lines())
    assert lines[0].startswith("demo: 0 methods at 64 bits") and "about 60 s on 2 cores" in lines[0]
    assert "--full: about 7 minutes" in lines[0]


# --------------------------------------------------------------------------------------------
# the README's Python: the API section and the recipe for one's own arrays run as written


def readme_python_blocks(heading: str) -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_python_api_example_runs(tmp_path, monkeypatch):
    (block,) = readme_python_blocks("## Python API")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md (Python API)", "exec"), scope)
    index = scope["index"]
    assert index.ntotal == 5000 and (tmp_path / "mine.codes.h5").is_file()
    D, I = index.search(scope["xt"][:10], k=5)
    assert I.shape == (10, 5) and I.dtype == np.int64 and D.dtype == np.float32
    assert (I[:, 0] == np.arange(10)).mean() >= 0.8  # each vector finds itself, through its 64-bit code


def test_the_readme_recipe_for_own_arrays_imports(tmp_path, monkeypatch):
    (block,) = [b for b in readme_python_blocks("## The pipeline") if "np.save" in b]
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    exec(compile(block, "README.md (own vectors)", "exec"),
         {"xb": rng.standard_normal((300, 8)), "xq": rng.standard_normal((10, 8))})
    rc, _, err = run_cli("import", "base.npy", "--queries", "queries.npy", "--distance", "angular", "-o", "mine.h5",
                         cwd=tmp_path)
    assert rc == 0, err
    with h5py.File(tmp_path / "mine.h5", "r") as f:
        assert f.attrs["distance"] == "angular" and f["train"].shape == (300, 8)
