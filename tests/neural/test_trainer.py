"""The shared neural trainer (vecspread.neural): the validation split, the checkpoint format, and what
sharing gives every method: the catalyzer now stops and resumes mid-epoch bit for bit, as NPhash does."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_fixtures import one_thread  # noqa: E402,F401  (autouse: every test runs on one thread)
from vecspread.io import fingerprints
from vecspread.errors import ConfigError, InputError  # noqa: E402
from vecspread.neural.checkpoint import read_checkpoint, write_checkpoint  # noqa: E402
from vecspread.neural.validation import split_sizes  # noqa: E402
from vecspread.runtime import RunSettings  # noqa: E402
from vecspread.transforms.catalyzer.transform import CatalyzerTransform  # noqa: E402


@pytest.mark.parametrize("val_size,n,default,expected", [
    (None, 100_000, "training-set", (0, 1000)), (None, 5000, "training-set", (0, 50)), (None, 99, "training-set", (0, 0)),
    (None, 100_000, "held-out", (10000, 1000)), (None, 2000, "held-out", (200, 20)),
    (3000, 10_000, "held-out", (3000, 300)), (5, 10_000, "held-out", (0, 0)), (0, 10_000, "training-set", (0, 0)),
    ((500, 50), 10_000, "training-set", (500, 50)), ((0, 40), 10_000, "held-out", (0, 40)),
    ((500, 0), 10_000, "held-out", (0, 0)),
])
def test_split_sizes(val_size, n, default, expected):
    assert split_sizes(val_size, n, default) == expected


def test_split_that_leaves_nothing_to_train_is_refused():
    with pytest.raises(ConfigError, match="leaves no training vectors"):
        split_sizes((900, 100), 1000, "held-out")


def test_checkpoint_of_another_kind_or_format_is_refused(tmp_path):
    path = str(tmp_path / "ck.h5")
    write_checkpoint(path, {"kind": "nphash"}, {"model": {"w": np.zeros(3, np.float32)}})
    meta, groups = read_checkpoint(path, "nphash")
    assert meta["kind"] == "nphash" and groups["model"]["w"].shape == (3,)
    with pytest.raises(InputError, match="not a catalyzer one"):
        read_checkpoint(path, "catalyzer")
    import h5py

    with h5py.File(path, "a") as f:
        del f["meta"]
        f["meta"] = np.frombuffer(b'{"kind": "nphash", "format": 1}', np.uint8)
    with pytest.raises(InputError, match="member 'meta' does not match its recorded fingerprint"):
        read_checkpoint(path, "nphash")
    with h5py.File(path, "a") as f:  # the same edit with the fingerprints rewritten: the format is checked
        fingerprints.record(f)
    with pytest.raises(InputError, match="format 1"):
        read_checkpoint(path, "nphash")
    with pytest.raises(InputError, match="does not exist"):
        read_checkpoint(str(tmp_path / "none.h5"), "nphash")


def test_catalyzer_budget_stop_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(1200, 16)) * 30).astype(np.float32)
    params = dict(dout=8, dint=32, epochs=2, bits=16, seed=3, val_size=0, kneg=5)
    full = CatalyzerTransform(**params).fit(x)
    ck = str(tmp_path / "ck.h5")
    stopped = CatalyzerTransform(**params).fit(x, run=RunSettings(checkpoint=ck, max_minutes=1e-9))
    assert stopped.history_[-1]["partial"] and stopped.history_[-1]["steps"] == 1
    meta, groups = read_checkpoint(ck, "catalyzer")
    assert (meta["epoch"], meta["step"]) == (0, 1) and {"order", "pos", "neg"} <= set(groups["epoch"])
    resumed = CatalyzerTransform(**params).fit(x, run=RunSettings(resume=ck))
    for name, w in full.get_weights().items():
        np.testing.assert_array_equal(resumed.get_weights()[name], w)
