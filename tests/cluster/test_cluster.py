"""``gt``, ``encode`` and ``search`` on a Dask cluster: the same bytes as one process, for every codec;
shard manifests checked; a worker killed mid-encode survived; a failing shard leaves nothing behind.

The tests share one LocalCluster (two worker processes) reached by its tcp:// address, as a remote
cluster would be; one test starts ``local:2`` through the command line.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error, brute_force_knn, cli_ok, make_synthetic, partial_files, run_cli

distributed = pytest.importorskip("distributed", reason="the --cluster runs need dask and distributed")

from vecspread.cluster.plan import shard_ranges  # noqa: E402
from vecspread.errors import InputError  # noqa: E402
from vecspread.io import fingerprints  # noqa: E402
from vecspread.models import open_codes  # noqa: E402

N, D, NQ = 3000, 32, 30
BLOCK = 64  # database rows per block: shards of 128 rows, some smaller than k


@pytest.fixture(scope="module")
def dask_cluster():
    """(address, client) of a two-worker LocalCluster, as a user's `dask scheduler` would be."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as local, distributed.Client(local) as client:
        yield local.scheduler_address, client


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """3000 x 32 clustered integer vectors (exact ties), a rotation model, a PCA model."""
    syn = make_synthetic(tmp_path_factory.mktemp("cluster"), seed=5, n=N, nq=NQ, d=D)
    cli_ok("train", syn.h5, "--method", "rotation", "--dout", D, "--seed", 3, "-o", syn.dir / "rot.h5")
    return syn


def _same(a: Path, b: Path, *names: str) -> None:
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for name in names:
            assert np.array_equal(fa[name][()], fb[name][()]), f"{name} of {a.name} and {b.name} differ"


def test_shard_ranges_follow_the_blocks_and_cover_the_rows():
    assert shard_ranges(1000, 2, 64) == [(0, 128), (128, 256), (256, 384), (384, 512), (512, 640), (640, 768),
                                         (768, 896), (896, 1000)]
    assert shard_ranges(1000, 1, 64, shard_rows=1) == [(s, min(1000, s + 64)) for s in range(0, 1000, 64)]
    assert shard_ranges(10, 4, 65536) == [(0, 10)]
    assert shard_ranges(0, 2, 64) == []


def test_gt_on_the_cluster_is_the_one_process_ground_truth(data, dask_cluster, tmp_path):
    address, _ = dask_cluster
    one, many = tmp_path / "one.gt.h5", tmp_path / "many.gt.h5"
    cli_ok("gt", data.h5, "-k", 100, "--block-size", BLOCK, "-o", one)
    cli_ok("gt", data.h5, "-k", 100, "--block-size", BLOCK, "--shard-rows", 100, "--cluster", address, "-o", many)
    _same(one, many, "neighbors", "distances")
    D_ref, _ = brute_force_knn(data.xq, data.xb, 100)
    with h5py.File(many) as f:
        assert np.allclose(f["distances"][()], D_ref, atol=1e-3)
        assert f.attrs["cluster"]


CODECS = [("sign", ["--bits", 32]), ("lattice", ["--bits", 64]), ("pq", ["--bits", 64]), ("opq", ["--bits", 64]),
          ("lsq", ["--bits", 32, "--train-iters", 2]), ("l2lsh", ["--bits", 64])]


@pytest.mark.parametrize("codec,opts", CODECS, ids=[c for c, _ in CODECS])
def test_encode_and_search_on_the_cluster_give_the_one_process_bytes(codec, opts, data, dask_cluster, tmp_path):
    address, _ = dask_cluster
    model = data.dir / "rot.h5"
    one, single, manifest = tmp_path / "one.h5", tmp_path / "single.h5", tmp_path / "manifest.h5"
    common = [model, data.h5, "--codec", codec, *opts, "--block-size", BLOCK, "--threads", 1]
    cli_ok("encode", *common, "-o", one)
    cli_ok("encode", *common, "--cluster", address, "--shard-rows", 500, "-o", single)
    cli_ok("encode", *common, "--cluster", address, "--shard-rows", 500, "--shard-files", "-o", manifest)
    _same(one, single, "codes")
    shards = sorted(glob.glob(str(tmp_path / "manifest.shard-*.h5")))
    assert len(shards) == 6 and not glob.glob(str(tmp_path / ".*shards*"))
    art, _, _ = open_codes(str(manifest))
    with art, h5py.File(one) as f:
        expected = f["codes"][()]
        assert np.array_equal(art.read("codes"), expected)
        ids = np.array([0, 5, 499, 500, 2999, 1234])
        assert np.array_equal(art.member("codes")[np.sort(ids)], expected[np.sort(ids)])
        assert np.array_equal(art.member("codes")[490:510], expected[490:510])

    results = {}
    for name, codes, extra in [("one", one, []), ("manifest", manifest, []),
                               ("cluster", single, ["--cluster", address, "--shard-rows", 700]),
                               ("cluster-manifest", manifest, ["--cluster", address])]:
        results[name] = tmp_path / f"{name}.res.h5"
        cli_ok("search", codes, data.h5, "-k", 50, "--threads", 1, "-o", results[name], *extra)
    for name in ("manifest", "cluster", "cluster-manifest"):
        _same(results["one"], results[name], "neighbors", "distances")
    rc, _, err = run_cli("verify", manifest, *shards)
    assert rc == 0, err
    with h5py.File(shards[1]) as f:
        assert f.attrs["vecspread_kind"] == "shard"
        assert [r["role"] for r in json.loads(f.attrs["inputs"])] == ["model", "dataset"]
        assert (f["codes"].attrs["start"], f["codes"].attrs["stop"]) == (512, 1024)  # --shard-rows 500 in whole blocks of 64


def test_local_cluster_from_the_command_line(data, tmp_path):
    one, many = tmp_path / "one.gt.h5", tmp_path / "many.gt.h5"
    cli_ok("gt", data.h5, "-k", 10, "-o", one)
    rc, _, err = run_cli("gt", data.h5, "-k", 10, "--cluster", "local:2", "--block-size", 512, "-o", many)
    assert rc == 0, err
    assert "cluster local:2: 2 workers" in err
    _same(one, many, "neighbors", "distances")


def test_a_worker_killed_mid_encode_is_survived(data, tmp_path):
    """SIGKILL to a worker running a shard: Dask runs its tasks again on a worker (the nanny restarts the
    killed one) and the codes come out complete and byte-identical."""
    from vecspread.stages.encode import encode_dataset

    model = str(data.dir / "rot.h5")
    one, many = tmp_path / "one.h5", tmp_path / "many.h5"
    encode_dataset(model, str(data.h5), str(one), "pq", {"bits": 64}, block_size=BLOCK)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as local, distributed.Client(local) as client:
        pids = client.run(os.getpid)
        outcome: dict = {}

        def run() -> None:
            try:
                outcome["summary"] = encode_dataset(model, str(data.h5), str(many), "pq", {"bits": 64},
                                                    block_size=BLOCK, cluster=local.scheduler_address, shard_rows=1)
            except BaseException as e:  # noqa: BLE001  (handed to the test thread)
                outcome["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        victim = _kill_a_busy_worker(client, pids, thread, "vecspread-encode")
        thread.join(120)
        assert victim is not None, "no worker was seen running an encode task"
        assert "error" not in outcome, outcome.get("error")
        assert victim not in client.run(os.getpid).values()  # it was killed (and replaced by its nanny)
    assert outcome["summary"]["cluster"]["shards"] == -(-N // BLOCK)
    _same(one, many, "codes")


def _kill_a_busy_worker(client, pids: dict, running: threading.Thread, label: str) -> int | None:
    """SIGKILL the first worker seen running a ``label`` task; its pid (None if none was seen)."""
    deadline = time.monotonic() + 60
    while running.is_alive() and time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items() if any(label in str(k) for k in keys)]
        if busy and busy[0] in pids:
            os.kill(pids[busy[0]], signal.SIGKILL)
            return pids[busy[0]]
        time.sleep(0.005)
    return None


def test_a_shard_whose_workers_keep_dying_is_one_error_and_no_output(data, tmp_path):
    """With no failure allowed, one killed worker ends the run: ClusterError, no output, no shard files."""
    import dask

    from vecspread.errors import ClusterError
    from vecspread.stages.encode import encode_dataset

    out = tmp_path / "codes.h5"
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                     silence_logs=logging.CRITICAL) as local, distributed.Client(local) as client:
        outcome: dict = {}

        def run() -> None:
            try:
                encode_dataset(str(data.dir / "rot.h5"), str(data.h5), str(out), "pq", {"bits": 64}, block_size=BLOCK,
                               cluster=local.scheduler_address, shard_rows=1)
            except BaseException as e:  # noqa: BLE001  (handed to the test thread)
                outcome["error"] = e

        thread = threading.Thread(target=run)
        thread.start()
        victim = _kill_a_busy_worker(client, client.run(os.getpid), thread, "vecspread-encode")
        thread.join(120)
    assert victim is not None, "no worker was seen running an encode task"
    assert isinstance(outcome.get("error"), ClusterError), outcome
    assert "died 1 time (out of memory?" in str(outcome["error"])
    assert sorted(os.listdir(tmp_path)) == [] and not partial_files(tmp_path)


def test_a_failing_shard_leaves_nothing_behind(data, dask_cluster, tmp_path):
    """A database row that cannot be encoded (NaN), in the middle: one line, exit 2, no output, no shards."""
    address, _ = dask_cluster
    xb = data.xb.copy()
    xb[2222, 3] = np.nan
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:  # an ann-benchmarks file: vecspread does not refuse it at import
        f["train"], f["test"] = xb, data.xq
        f.attrs["distance"] = "euclidean"
    out = tmp_path / "codes.h5"
    rc, _, err = run_cli("-q", "encode", data.dir / "rot.h5", bad, "--codec", "lattice", "--bits", 64, "--block-size", BLOCK,
                         "--cluster", address, "-o", out)
    line = assert_one_line_error(rc, err)
    assert "row 2222" in line and "NaN" in line
    assert sorted(os.listdir(tmp_path)) == ["bad.h5"] and not partial_files(tmp_path)


def _manifest(data, address, out: Path, codec: str = "lattice") -> Path:
    cli_ok("encode", data.dir / "rot.h5", data.h5, "--codec", codec, "--bits", 64, "--block-size", BLOCK,
           "--cluster", address, "--shard-rows", 1000, "--shard-files", "-o", out)
    return out


def test_a_lost_shard_is_one_line(data, dask_cluster, tmp_path):
    manifest = _manifest(data, dask_cluster[0], tmp_path / "m.h5")
    os.remove(tmp_path / "m.shard-00001-of-00003.h5")
    rc, _, err = run_cli("search", manifest, data.h5, "-k", 10, "-o", tmp_path / "r.h5")
    line = assert_one_line_error(rc, err)
    assert "m.shard-00001-of-00003.h5 is missing" in line
    assert not (tmp_path / "r.h5").exists()


def test_a_manifest_that_does_not_match_its_shards_is_one_line(data, dask_cluster, tmp_path):
    manifest = _manifest(data, dask_cluster[0], tmp_path / "m.h5")
    shutil.copy(manifest, tmp_path / "old.h5")
    _manifest(data, dask_cluster[0], tmp_path / "m.h5", codec="pq")  # the same shard names, other codes
    rc, _, err = run_cli("search", tmp_path / "old.h5", data.h5, "-k", 10, "-o", tmp_path / "r.h5")
    assert "is not the shard the manifest was written with" in assert_one_line_error(rc, err)


def test_an_edited_shard_table_is_refused(data, dask_cluster, tmp_path):
    manifest = _manifest(data, dask_cluster[0], tmp_path / "m.h5")
    with h5py.File(manifest, "r+") as f:
        f["shards"].attrs["table"] = f["shards"].attrs["table"].replace("m.shard-00000", "m.shard-00002")
    rc, _, err = run_cli("search", manifest, data.h5, "-k", 10, "-o", tmp_path / "r.h5")
    assert "does not match its recorded fingerprint" in assert_one_line_error(rc, err)


def test_a_manifest_never_points_outside_its_directory(data, dask_cluster, tmp_path):
    """Even with its fingerprints recomputed (a forged file), a shard named by a path is refused."""
    manifest = _manifest(data, dask_cluster[0], tmp_path / "m.h5")
    with h5py.File(manifest, "r+") as f:
        f["shards"].attrs["table"] = f["shards"].attrs["table"].replace('"m.shard-00000', '"../m.shard-00000')
        fingerprints.record(f)
    with pytest.raises(InputError, match="not a plain file name"):
        open_codes(str(manifest))


def test_verify_checks_a_manifest_with_its_shards(data, dask_cluster, tmp_path):
    manifest = _manifest(data, dask_cluster[0], tmp_path / "m.h5")
    assert cli_ok("verify", manifest, "--json")
    shard = tmp_path / "m.shard-00002-of-00003.h5"
    with h5py.File(shard, "r+") as f:
        f["codes"][5, 0] ^= 1
    rc, out, _ = run_cli("verify", manifest, "--json")
    assert rc == 1 and "shard m.shard-00002-of-00003.h5: member 'codes' does not match" in out
    os.remove(shard)
    rc, out, _ = run_cli("verify", manifest, "--json")
    assert rc == 1 and "m.shard-00002-of-00003.h5 is missing" in out


def test_inspect_reads_a_manifest_as_codes(data, dask_cluster, tmp_path):
    manifest = _manifest(data, dask_cluster[0], tmp_path / "m.h5")
    one = tmp_path / "one.h5"
    cli_ok("encode", data.dir / "rot.h5", data.h5, "--codec", "lattice", "--bits", 64, "-o", one)
    reports = [json.loads(cli_ok("inspect", codes, data.h5, "--json")) for codes in (one, manifest)]
    for report in reports:
        report.pop("artifact"), report.pop("seconds")
    assert reports[0] == reports[1]


def test_hash_tables_are_refused_on_the_cluster(data, dask_cluster, tmp_path):
    codes = tmp_path / "sign.h5"
    cli_ok("encode", data.dir / "rot.h5", data.h5, "--codec", "sign", "--bits", 32, "-o", codes)
    rc, _, err = run_cli("-q", "search", codes, data.h5, "--tables", 4, "--bits-per-table", 8, "--cluster", dask_cluster[0],
                         "-o", tmp_path / "r.h5")
    assert "--cluster scans the codes exhaustively" in assert_one_line_error(rc, err)


@pytest.mark.parametrize("args,message", [
    (["--cluster", "localhost:8786"], "expected tcp://HOST:PORT"),
    (["--cluster", "local:0"], "local:N takes 1 to 256 workers"),
    (["--shard-files"], "--shard-files writes the shards of a sharded run: give --cluster too"),
])
def test_cluster_options_are_checked_first(args, message, data, tmp_path):
    rc, _, err = run_cli("encode", data.dir / "rot.h5", data.h5, "--codec", "sign", "--bits", 32, *args,
                         "-o", tmp_path / "c.h5")
    assert message in assert_one_line_error(rc, err)
