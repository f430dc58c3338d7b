"""Artifacts: provenance attributes, atomic writes, fingerprints, ann-benchmarks files, lineage and
kind checks, and the refusal of non-numeric model weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error, brute_force_knn, cli_ok, l2_distances, partial_files, run_cli
from vecspread.errors import InputError
from vecspread.io.artifacts import KINDS, check_output_path, open_artifact, write_artifact
from vecspread.io.fingerprints import of_file as content_fingerprint
from vecspread.io.atomic import clean_stale_partials, partial_path
from vecspread.io.owners import process_tag
from vecspread.io.datasets import Dataset
from vecspread.io.formats import write_vectors
from vecspread.io.components import read_component, write_component


def _attrs(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


def _fingerprint(path) -> str:
    return str(_attrs(path)["fingerprint"])


# --------------------------------------------------------------------------------------------
# root attributes and provenance


def test_every_kind_carries_provenance(pipeline):
    p = pipeline
    files = {
        "dataset": (p.data.h5, []),
        "groundtruth": (p.gt, [("dataset", p.data.h5)]),
        "model": (p.pca24, [("dataset", p.data.h5)]),
        "codes": (p.lattice_codes, [("model", p.pca24), ("dataset", p.data.h5)]),
        "results": (p.lattice_results, [("codes", p.lattice_codes), ("dataset", p.data.h5)]),
    }
    assert set(files) == set(KINDS) - {"shard"}  # shards of sharded codes: tests/cluster/test_cluster.py
    from vecspread import __version__

    for kind, (path, expected_inputs) in files.items():
        a = _attrs(path)
        assert a["vecspread_kind"] == kind
        assert a["vecspread_version"] == __version__
        assert "vecspread" in a["created_by"] or "__main__" in a["created_by"], a["created_by"]
        params = json.loads(a["params"])
        assert isinstance(params, dict) and params, kind
        inputs = json.loads(a["inputs"])
        assert [(r["role"], os.path.realpath(r["path"])) for r in inputs] == [
            (role, os.path.realpath(ip)) for role, ip in expected_inputs
        ], kind
        for rec, (role, ip) in zip(inputs, expected_inputs):
            assert rec["fingerprint"] == _fingerprint(ip), (kind, role)
            assert rec["kind"] == _attrs(ip)["vecspread_kind"]
        # the stored fingerprint is the content hash of the file's datasets
        with h5py.File(path, "r") as f:
            assert a["fingerprint"] == content_fingerprint(f), kind


def test_created_by_records_the_command(pipeline):
    created_by = _attrs(pipeline.pca24)["created_by"]
    assert "train" in created_by and "--dout" in created_by and "24" in created_by


def test_params_record_the_options(pipeline):
    assert json.loads(_attrs(pipeline.rot32)["params"])["seed"] == 7
    codes = json.loads(_attrs(pipeline.lattice_codes)["params"])
    assert codes["codec"] == "lattice" and codes["d"] == 24 and codes["r2"] == 79
    assert json.loads(_attrs(pipeline.gt)["params"])["k"] == 100


# --------------------------------------------------------------------------------------------
# atomic writes


class Boom(RuntimeError):
    pass


def test_failed_write_leaves_no_target_and_no_partial(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(Boom):
        with write_artifact(target, "results", params={"k": 1}) as f:
            f.create_dataset("neighbors", data=np.zeros((10, 3), np.int64))
            assert not target.exists()  # nothing under the target name while writing
            assert partial_files(tmp_path)  # the data goes to a visibly partial file
            raise Boom()
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_existing_target(tmp_path):
    target = tmp_path / "out.h5"
    with write_artifact(target, "results") as f:
        f.create_dataset("neighbors", data=np.arange(6).reshape(2, 3))
    before = target.read_bytes()
    with pytest.raises(Boom):
        with write_artifact(target, "results") as f:
            f.create_dataset("neighbors", data=np.zeros((2, 3), np.int64))
            raise Boom()
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.h5"]


def test_successful_write_replaces_target(tmp_path):
    target = tmp_path / "out.h5"
    target.write_bytes(b"old contents")
    with write_artifact(target, "groundtruth", params={"k": 2}, attrs={"distance": "euclidean"}) as f:
        f.create_dataset("neighbors", data=np.zeros((1, 2), np.int64))
    assert os.listdir(tmp_path) == ["out.h5"]
    with open_artifact(target, "groundtruth") as art:
        assert art.kind == "groundtruth"
        assert art.params == {"k": 2}
        assert art.file.attrs["distance"] == "euclidean"


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    target = tmp_path / "out.h5"
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    stale = partial_path(target, process_tag(dead_pid))
    stale.write_bytes(b"half")
    mine = partial_path(target)
    mine.write_bytes(b"in progress")
    other = tmp_path / f".other.h5.{process_tag(dead_pid)}.partial"  # another target: not ours to clean
    other.write_bytes(b"x")
    clean_stale_partials(target)
    assert not stale.exists()
    assert mine.exists() and other.exists()


def test_partials_of_other_machines_and_namespaces_are_never_taken_for_stale(tmp_path):
    """Issue 13: a writer in another PID namespace (a container on the same volume) or on another host
    is alive as far as we can know; a PID reused by a newer process does not keep a stale file alive."""
    target = tmp_path / "out.h5"
    pid, rest = process_tag().split(".", 1)
    machine, namespace, start = rest.split("-")
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True).stdout)
    foreign = [
        partial_path(target, f"{dead_pid}.{'0' * 12}-{namespace}-{start}"),  # another machine (boot id)
        partial_path(target, f"{dead_pid}.{machine}-{int(namespace) + 1}-{start}"),  # another PID namespace
        partial_path(target, f"{dead_pid}.not-a-tag"),  # not a name we write: left alone
    ]
    reused = partial_path(target, f"{os.getppid()}.{machine}-{namespace}-1")  # a running PID, started later
    for p in foreign + [reused]:
        p.write_bytes(b"x")
    clean_stale_partials(target)
    assert all(p.exists() for p in foreign)
    assert not reused.exists()


# --------------------------------------------------------------------------------------------
# fingerprints


def test_fingerprint_depends_on_content_not_path(tmp_path, syn):
    b, c = tmp_path / "sub" / "b.h5", tmp_path / "c.h5"
    b.parent.mkdir()
    base2 = tmp_path / "base-copy.fvecs"
    shutil.copy(syn.base, base2)
    cli_ok("import", base2, "--queries", syn.queries, "-o", b)  # same vectors, other file names
    xb = syn.xb.copy()
    xb[123, 4] += 1
    changed = tmp_path / "changed.fvecs"
    write_vectors(str(changed), xb)
    cli_ok("import", changed, "--queries", syn.queries, "-o", c)
    assert _fingerprint(b) == _fingerprint(syn.h5)
    assert _fingerprint(c) != _fingerprint(syn.h5)
    # a copy of the file is the same artifact
    copy = tmp_path / "copy.h5"
    shutil.copy(syn.h5, copy)
    with open_artifact(copy, "dataset") as x, open_artifact(syn.h5, "dataset") as y:
        assert x.fingerprint == y.fingerprint == _fingerprint(syn.h5)


def test_content_fingerprint_sees_names_dtypes_shapes_and_values(tmp_path, monkeypatch):
    from vecspread.io import fingerprints

    monkeypatch.setattr(fingerprints, "BLOCK_ROWS", 3)  # several blocks per dataset

    def fp(build) -> str:
        path = tmp_path / "f.h5"
        with h5py.File(path, "w") as f:
            build(f)
        with h5py.File(path, "r") as f:
            return fingerprints.compute(f)

    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    ref = fp(lambda f: f.create_dataset("a", data=x))
    assert fp(lambda f: f.create_dataset("a", data=x)) == ref
    assert fp(lambda f: (f.create_dataset("a", data=x), f.attrs.create("note", "attrs are not content"))) == ref
    assert fp(lambda f: f.create_dataset("b", data=x)) != ref
    assert fp(lambda f: f.create_dataset("a", data=x.astype(np.float64))) != ref
    assert fp(lambda f: f.create_dataset("a", data=x.reshape(5, 4))) != ref
    y = x.copy()
    y[9, 1] = -1  # in the last block
    assert fp(lambda f: f.create_dataset("a", data=y)) != ref


# --------------------------------------------------------------------------------------------
# ann-benchmarks files


@pytest.fixture(scope="module")
def ann_file(tmp_path_factory, syn):
    """An ann-benchmarks style file: train/test/neighbors/distances, attr distance, no vecspread attrs."""
    path = tmp_path_factory.mktemp("ann") / "ann-style.hdf5"
    D, I = brute_force_knn(syn.xq, syn.xb, 20)
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        f.attrs["point_type"] = "float"
        f.create_dataset("train", data=syn.xb)
        f.create_dataset("test", data=syn.xq)
        f.create_dataset("neighbors", data=I.astype(np.int32))
        f.create_dataset("distances", data=D.astype(np.float32))
    return path


def test_ann_benchmarks_file_opens_as_dataset(ann_file, syn):
    with Dataset(ann_file) as ds:
        assert ds.distance == "euclidean" and ds.d == syn.xb.shape[1]
        assert ds.size("train") == len(syn.xb) and ds.size("test") == len(syn.xq)
        np.testing.assert_array_equal(ds.read("train"), syn.xb)
        blocks = list(ds.blocks("train", 250))
        assert [s for s, _ in blocks] == [0, 250, 500]
        np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), syn.xb)
        assert len(ds.fingerprint) == 32
        with h5py.File(ann_file, "r") as f:
            assert ds.fingerprint == content_fingerprint(f)
    with pytest.raises(InputError, match="expected a model"):
        open_artifact(ann_file, "model")


def test_ann_benchmarks_file_runs_through_the_pipeline(ann_file, syn, tmp_path):
    model, codes, res = tmp_path / "m.h5", tmp_path / "c.h5", tmp_path / "r.h5"
    cli_ok("train", ann_file, "-m", "rotation", "--dout", 16, "-o", model)
    cli_ok("encode", model, ann_file, "--codec", "sign", "-o", codes)
    cli_ok("search", codes, ann_file, "-k", 20, "-o", res)
    out = cli_ok("eval", res, ann_file, "--at", "1,10,20", "--json")
    report = json.loads(out)
    assert set(report["recall"]) == {"1", "10", "20"}
    # against the field's definitions computed from all true distances
    with h5py.File(res, "r") as f:
        I = f["neighbors"][()]
    Dtrue = l2_distances(syn.xq, syn.xb)
    Dsorted = np.sort(Dtrue, 1)
    got = np.take_along_axis(Dtrue, I, 1)
    for k in (1, 10, 20):
        one = (got[:, :k] <= Dsorted[:, :1] + 1e-6).any(1).mean()
        kr = ((got[:, :k] <= Dsorted[:, k - 1 : k] + 1e-6).sum(1) / k).mean()
        assert report["recall"][str(k)] == pytest.approx(one)
        assert report["k_recall"][str(k)] == pytest.approx(kr)
    # the ann file's fingerprint (computed on open) is what the results record
    with open_artifact(ann_file, "dataset") as art:
        assert json.loads(_attrs(res)["inputs"])[1]["fingerprint"] == art.fingerprint


def test_ann_benchmarks_bytes_distance_attribute(tmp_path):
    path = tmp_path / "ann.hdf5"
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = np.bytes_(b"angular")
        f.create_dataset("train", data=np.ones((5, 3), np.float32))
        f.create_dataset("test", data=np.ones((2, 3), np.float32))
    with Dataset(path) as ds:
        assert ds.distance == "angular"


# --------------------------------------------------------------------------------------------
# lineage and kinds, through the CLI


def test_lineage_codes_from_another_dataset_refused(pipeline, syn_other, tmp_path):
    out = tmp_path / "res.h5"
    rc, stdout, stderr = run_cli("search", pipeline.sign_codes, syn_other.h5, "-k", 5, "-o", out)
    line = assert_one_line_error(rc, stderr)
    assert "encoded from" in line and str(syn_other.h5) in line
    assert not out.exists() and not partial_files(tmp_path)


def test_lineage_follows_content_not_path(pipeline, tmp_path):
    """A byte copy of the dataset under another name is the same dataset."""
    copy = tmp_path / "renamed.h5"
    shutil.copy(pipeline.data.h5, copy)
    cli_ok("search", pipeline.sign_codes, copy, "-k", 5, "-o", tmp_path / "res.h5")


def test_lineage_eval_against_another_datasets_groundtruth(pipeline, syn_other, tmp_path):
    gt_b = tmp_path / "gt-b.h5"
    cli_ok("gt", syn_other.h5, "-k", 10, "-o", gt_b)
    rc, _, stderr = run_cli("eval", pipeline.sign_results, gt_b, "--at", "1,10")
    line = assert_one_line_error(rc, stderr)
    assert "ground truth of another dataset" in line


def test_lineage_distance_is_part_of_the_dataset(pipeline, tmp_path):
    """The same vectors imported with --distance angular are another dataset: its ground truth ranks by
    cosine, so scoring results of the euclidean dataset against it must be refused, not reported."""
    from vecspread.stages.groundtruth import compute_groundtruth
    from vecspread.stages.importing import import_dataset

    syn = pipeline.data
    angular, gt = tmp_path / "angular.h5", tmp_path / "gt-angular.h5"
    import_dataset(str(syn.base), str(angular), queries=str(syn.queries), distance="angular")
    compute_groundtruth(str(angular), str(gt), 100)
    with h5py.File(gt, "r") as f:
        assert f.attrs["distance"] == "angular"
    rc, _, stderr = run_cli("eval", pipeline.sign_results, gt, "--at", "1,10")
    assert_one_line_error(rc, stderr)


@pytest.mark.parametrize(
    "args, expected, found",
    [
        (["search", "{model}", "{data}", "-k", "5", "-o", "{out}"], "codes", "model"),
        (["encode", "{codes}", "{data}", "--codec", "sign", "-o", "{out}"], "model", "codes"),
        (["eval", "{model}", "{gt}"], "results", "model"),
        (["eval", "{results}", "{model}"], "groundtruth", "model"),
    ],
)
def test_wrong_kind_refused_with_one_line(pipeline, tmp_path, args, expected, found):
    names = {"model": pipeline.rot32, "data": pipeline.data.h5, "codes": pipeline.sign_codes,
             "gt": pipeline.gt, "results": pipeline.sign_results, "out": tmp_path / "out.h5"}
    rc, _, stderr = run_cli(*[a.format(**names) for a in args])
    line = assert_one_line_error(rc, stderr)
    assert f"expected a {expected}" in line and f"found {found}" in line
    assert not (tmp_path / "out.h5").exists()


# --------------------------------------------------------------------------------------------
# model weights are numeric datasets only


def _opaque(group):
    group.create_dataset("evil", data=np.void(b"cos\nsystem\n(S'echo pwned'\ntR."))


def _vlen_bytes(group):
    group.create_dataset("evil", data=np.array([b"\x80\x04K\x01."], dtype=object), dtype=h5py.vlen_dtype(bytes))


def _fixed_bytes(group):
    group.create_dataset("evil", data=np.array([b"\x80\x04K\x01."]))


def _vlen_str(group):
    group.create_dataset("evil", data="import os", dtype=h5py.string_dtype())


def _compound(group):
    group.create_dataset("evil", data=np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))


PLANTS = [_opaque, _vlen_bytes, _fixed_bytes, _vlen_str, _compound]


@pytest.mark.parametrize("plant", PLANTS, ids=lambda f: f.__name__.strip("_"))
def test_read_component_refuses_non_numeric(tmp_path, plant):
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("transform")
        write_component(g, "pca", {"dout": 2}, {"mean": np.zeros(3, np.float32)})
        plant(g.create_group("sub") if plant is _compound else g)
    with h5py.File(path, "r") as f:
        with pytest.raises(InputError, match="evil"):
            read_component(f["transform"], str(path))


def test_read_component_round_trip(tmp_path):
    path = tmp_path / "m.h5"
    arrays = {"mean": np.arange(3, dtype=np.float32), "matrix": np.eye(3, dtype=np.float64), "flags": np.array([True, False])}
    with h5py.File(path, "w") as f:
        write_component(f.create_group("codec"), "sign", {"d": 3}, arrays)
    with h5py.File(path, "r") as f:
        type_name, config, got = read_component(f["codec"], str(path))
    assert type_name == "sign" and config == {"d": 3}
    assert set(got) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == arrays[k].dtype


def test_write_component_refuses_non_numeric(tmp_path):
    with h5py.File(tmp_path / "m.h5", "w") as f:
        with pytest.raises(TypeError):
            write_component(f.create_group("t"), "x", {}, {"o": np.array([object()], dtype=object)})


def test_cli_refuses_model_with_planted_object(pipeline, tmp_path):
    model = tmp_path / "model.h5"
    shutil.copy(pipeline.rot32, model)
    with h5py.File(model, "a") as f:
        _opaque(f["transform"])
    out = tmp_path / "codes.h5"
    # the recorded fingerprint no longer matches: refused as modified
    rc, _, stderr = run_cli("encode", model, pipeline.data.h5, "--codec", "sign", "-o", out)
    assert "fingerprint" in assert_one_line_error(rc, stderr)
    # an attacker can recompute the fingerprints: the loader itself still accepts numbers only
    from vecspread.io import fingerprints

    with h5py.File(model, "a") as f:
        fingerprints.record(f)
    rc, _, stderr = run_cli("encode", model, pipeline.data.h5, "--codec", "sign", "-o", out)
    line = assert_one_line_error(rc, stderr)
    assert "evil" in line and "numeric" in line
    assert not out.exists() and not partial_files(tmp_path)


def test_cli_refuses_model_with_inconsistent_weights(pipeline, tmp_path):
    """A damaged model (mean narrower than the matrix) is bad input: one line, exit 2, no traceback."""
    model = tmp_path / "model.h5"
    shutil.copy(pipeline.rot32, model)
    with h5py.File(model, "a") as f:
        del f["transform/mean"]
        f["transform/mean"] = np.zeros(5, np.float32)
    out = tmp_path / "codes.h5"
    rc, _, stderr = run_cli("encode", model, pipeline.data.h5, "--codec", "sign", "-o", out)
    assert_one_line_error(rc, stderr)
    assert not out.exists() and not partial_files(tmp_path)


def test_check_output_path(tmp_path):
    inp = tmp_path / "in.h5"
    inp.write_bytes(b"x")
    with pytest.raises(InputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "out.h5", [])
    with pytest.raises(InputError, match="also an input"):
        check_output_path(tmp_path / "." / "in.h5", [str(inp)])
    with pytest.raises(InputError, match="is a directory"):
        check_output_path(tmp_path, [])
    assert check_output_path(tmp_path / "out.h5", [str(inp)]) == tmp_path / "out.h5"
