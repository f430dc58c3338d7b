"""`vecspread tune` (issue 16): the grid is the product of its lists, each point is trained and scored on
held-out learn vectors only, the best model is written, bad grids are one-line errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from conftest import assert_one_line_error, run_cli
from vecspread.errors import ConfigError
from vecspread.stages.tune import parse_grid

TINY = ("--dout", 8, "--dint", 32, "--epochs", 2, "--bits", 16, "--val-size", "0,60", "--threads", 1)


def test_grid_values_are_checked_as_the_options_are():
    assert parse_grid("catalyzer", ["lam=0.01,0.05", "dout=16,24"]) == {"lam": [0.01, 0.05], "dout": [16, 24]}
    assert parse_grid("nphash", ["tau-in=0.03,0.1"]) == {"tau_in": [0.03, 0.1]}
    for bad, words in ((["lam"], "expected NAME=V1"), (["colour=1"], "no option --colour"),
                       (["dout=0"], "--dout must be at least 1"), (["lam=x"], "not a number"),
                       (["lam=1", "lam=2"], "given twice"), ([], "at least one --grid")):
        with pytest.raises(ConfigError, match=words):
            parse_grid("catalyzer", bad)


@pytest.fixture(scope="module")
def tuned(syn, tmp_path_factory):
    d = tmp_path_factory.mktemp("tune")
    rc, out, err = run_cli("tune", syn.h5, *TINY, "--grid", "lam=0.01,0.2", "--grid", "kneg=3,6", "-o", d / "best.h5",
                           "--json", "--plot", d / "t.png")
    assert rc == 0, err
    return d, json.loads(out), err


def test_every_point_is_trained_and_the_best_is_written(tuned):
    d, result, err = tuned
    points = result["points"]
    assert [(p["lam"], p["kneg"]) for p in points] == [(0.01, 3), (0.01, 6), (0.2, 3), (0.2, 6)]
    assert result["best"]["val_recall10"] == max(p["val_recall10"] for p in points)
    assert all(p["val_codec"] == "lattice" and 0 <= p["val_recall10"] <= 1 for p in points)
    with h5py.File(d / "best.h5", "r") as f:
        params = json.loads(f.attrs["params"])
    assert (params["lam"], params["kneg"]) == (result["best"]["lam"], result["best"]["kneg"])
    assert (d / "t.png").stat().st_size > 0 and "[4/4]" in err
    assert not [p for p in d.iterdir() if p.name.startswith("vecspread-tune-")]  # no temporary left


def test_the_test_queries_are_never_looked_at(syn, tuned, tmp_path):
    """The same dataset with other test queries scores every point the same."""
    other = tmp_path / "other.h5"
    with h5py.File(syn.h5, "r") as f:
        base = f["train"][:]
    from vecspread.io.artifacts import write_artifact

    with write_artifact(str(other), "dataset", params={}, inputs=[], attrs={"distance": "euclidean"}) as f:
        f.create_dataset("train", data=base)
        f.create_dataset("test", data=np.zeros((5, base.shape[1]), np.float32) + 3)
    rc, out, err = run_cli("tune", other, *TINY, "--grid", "lam=0.01,0.2", "--grid", "kneg=3,6", "-o", tmp_path / "b.h5",
                           "--json")
    assert rc == 0, err
    assert [p["val_recall10"] for p in json.loads(out)["points"]] == [p["val_recall10"] for p in tuned[1]["points"]]


def test_bad_grids_are_one_line_errors(syn, tmp_path):
    for args in (("--grid", "lam"), ("--grid", "lam=0.1", "--lam", "0.2"), ("--grid", "nosuch=1")):
        rc, _, err = run_cli("tune", syn.h5, *TINY, *args, "-o", tmp_path / "x.h5")
        assert_one_line_error(rc, err)
        assert not (tmp_path / "x.h5").exists()
