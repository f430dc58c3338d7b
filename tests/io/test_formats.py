"""Tests for vecspread.formats: round trips, block streaming, row reads and every input error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_DATA
from vecspread.errors import InputError
from vecspread.io.formats import FORMATS, VectorFile, open_vectors, write_vectors

SIFTSMALL = SHARED_DATA / "siftsmall"

STORED_DTYPE = {
    "fvecs": np.float32,
    "ivecs": np.int32,
    "bvecs": np.uint8,
    "fbin": np.float32,
    "u8bin": np.uint8,
    "i8bin": np.int8,
    "ibin": np.int32,
}


def _sample(fmt: str, n: int = 37, d: int = 5, seed: int = 0) -> np.ndarray:
    """Small random data that fits the format's dtype exactly."""
    rng = np.random.default_rng(seed)
    dtype = STORED_DTYPE.get(fmt, np.float32)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal((n, d)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=(n, d), endpoint=True).astype(dtype)


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_round_trip_every_format(tmp_path, fmt):
    x = _sample(fmt)
    path = str(tmp_path / f"x.{fmt}")
    write_vectors(path, x)
    vf = open_vectors(path)
    assert isinstance(vf, VectorFile)
    assert (vf.path, vf.format, vf.n, vf.d) == (path, fmt, 37, 5)
    assert vf.dtype == x.dtype
    got = vf.read_all()
    assert got.dtype == x.dtype and got.shape == (37, 5)
    np.testing.assert_array_equal(got, x)
    assert not os.path.exists(path + ".partial")


@pytest.mark.parametrize("fmt", ["fvecs", "bvecs", "u8bin", "npy"])
def test_blocks_cover_ragged_tail(tmp_path, fmt):
    x = _sample(fmt, n=23, d=3)
    path = str(tmp_path / f"x.{fmt}")
    write_vectors(path, x)
    vf = open_vectors(path)
    got = list(vf.blocks(block_size=5))
    assert [s for s, _ in got] == [0, 5, 10, 15, 20]
    assert [len(b) for _, b in got] == [5, 5, 5, 5, 3]
    for _, b in got:
        assert b.flags.c_contiguous and b.flags.owndata and b.dtype == x.dtype
        assert not isinstance(b, np.memmap)
    np.testing.assert_array_equal(np.concatenate([b for _, b in got]), x)


def test_blocks_reject_nonpositive_size(tmp_path):
    path = str(tmp_path / "x.fbin")
    write_vectors(path, _sample("fbin"))
    with pytest.raises(ValueError):
        next(open_vectors(path).blocks(0))


@pytest.mark.parametrize("fmt", ["ivecs", "i8bin", "npy"])
def test_read_rows_unsorted_and_repeated(tmp_path, fmt):
    x = _sample(fmt, n=20, d=4)
    path = str(tmp_path / f"x.{fmt}")
    write_vectors(path, x)
    vf = open_vectors(path)
    ids = np.array([7, 3, 19, 3, 0, 7, 7])
    got = vf.read_rows(ids)
    assert got.shape == (7, 4) and got.dtype == x.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, x[ids])
    assert vf.read_rows(np.array([], dtype=np.int64)).shape == (0, 4)


def test_read_rows_out_of_range(tmp_path):
    path = str(tmp_path / "x.fvecs")
    write_vectors(path, _sample("fvecs", n=10))
    with pytest.raises(InputError, match=r"x\.fvecs.*row id 10"):
        open_vectors(path).read_rows(np.array([1, 10]))


def test_format_override_beats_extension(tmp_path):
    x = _sample("u8bin")
    path = str(tmp_path / "data.raw")
    write_vectors(path, x, fmt="u8bin")
    vf = open_vectors(path, fmt=".U8BIN")
    assert vf.format == "u8bin"
    np.testing.assert_array_equal(vf.read_all(), x)


def test_fortran_order_npy_gives_c_contiguous_blocks(tmp_path):
    x = np.asfortranarray(_sample("npy", n=9, d=4).astype(np.float64))
    path = str(tmp_path / "x.npy")
    np.save(path, x)
    vf = open_vectors(path)
    assert vf.dtype == np.float64
    _, b = next(vf.blocks(4))
    assert b.flags.c_contiguous
    np.testing.assert_array_equal(vf.read_all(), x)


def test_fvecs_reader_matches_independent_parse(tmp_path):
    x = _sample("fvecs", n=11, d=6)
    path = tmp_path / "x.fvecs"
    write_vectors(str(path), x)
    raw = np.fromfile(path, dtype="<i4").reshape(11, 7)
    assert (raw[:, 0] == 6).all()
    expected = np.ascontiguousarray(raw[:, 1:]).view("<f4")
    np.testing.assert_array_equal(open_vectors(str(path)).read_all(), expected)


def test_bigann_header_layout(tmp_path):
    x = _sample("ibin", n=4, d=3)
    path = tmp_path / "x.ibin"
    write_vectors(str(path), x)
    raw = np.fromfile(path, dtype="<u4", count=2)
    assert raw.tolist() == [4, 3]
    assert path.stat().st_size == 8 + 4 * 3 * 4


# --- writer refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, values, match",
    [
        ("bvecs", [[0, 256]], "do not fit uint8"),
        ("u8bin", [[-1, 3]], "do not fit uint8"),
        ("i8bin", [[128, 0]], "do not fit int8"),
        ("ivecs", [[0.5, 1.0]], "non-integral"),
        ("ibin", [[np.nan, 1.0]], "NaN or infinite"),
        ("fvecs", [[1e300, 0.0]], "float32's range"),
    ],
)
def test_write_refuses_values_that_do_not_fit(tmp_path, fmt, values, match):
    path = tmp_path / f"x.{fmt}"
    with pytest.raises(InputError, match=match):
        write_vectors(str(path), np.array(values))
    assert not path.exists() and not Path(str(path) + ".partial").exists()


def test_write_converts_integral_floats(tmp_path):
    path = str(tmp_path / "x.bvecs")
    write_vectors(path, np.array([[0.0, 255.0], [3.0, 4.0]]))
    got = open_vectors(path).read_all()
    assert got.dtype == np.uint8 and got.tolist() == [[0, 255], [3, 4]]


@pytest.mark.parametrize("x", [np.zeros(3), np.zeros((0, 3)), np.array([[1, "a"]], dtype=object)])
def test_write_refuses_bad_arrays(tmp_path, x):
    with pytest.raises(InputError, match="x.npy"):
        write_vectors(str(tmp_path / "x.npy"), x)


def test_write_into_missing_directory(tmp_path):
    with pytest.raises(InputError, match=r"x\.fbin: directory .*nope does not exist"):
        write_vectors(str(tmp_path / "nope" / "x.fbin"), _sample("fbin"))


# --- reader errors --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.fvecs: no such file"):
        open_vectors(str(tmp_path / "nope.fvecs"))


def test_directory_is_refused(tmp_path):
    d = tmp_path / "dir.fvecs"
    d.mkdir()
    with pytest.raises(InputError, match="is a directory"):
        open_vectors(str(d))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "x.fbin"
    write_vectors(str(path), _sample("fbin"))
    path.chmod(0)
    with pytest.raises(InputError, match="permission denied"):
        open_vectors(str(path))


def test_unreadable_file_even_as_root(tmp_path, monkeypatch):
    path = tmp_path / "x.fbin"
    write_vectors(str(path), _sample("fbin"))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("vecspread.io.formats.open", denied, raising=False)
    with pytest.raises(InputError, match=r"x\.fbin: permission denied"):
        open_vectors(str(path))


def test_unknown_extension_lists_formats_and_flag(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2\n")
    with pytest.raises(InputError, match="x.csv") as e:
        open_vectors(str(path))
    msg = str(e.value)
    assert "--format" in msg and ".fvecs" in msg and ".u8bin" in msg and "\n" not in msg


def test_unknown_format_override(tmp_path):
    with pytest.raises(InputError, match="unknown format 'hdf5'"):
        open_vectors(str(tmp_path / "x.fvecs"), fmt="hdf5")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_empty_file(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        open_vectors(str(path))


@pytest.mark.parametrize("fmt", ["fvecs", "bvecs", "fbin", "u8bin", "npy"])
def test_truncated_file(tmp_path, fmt):
    path = tmp_path / f"x.{fmt}"
    write_vectors(str(path), _sample(fmt))
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.raises(InputError, match="truncated") as e:
        open_vectors(str(path))
    assert str(path) in str(e.value)


def test_wrong_header_in_middle_record_of_fvecs(tmp_path):
    path = tmp_path / "x.fvecs"
    write_vectors(str(path), _sample("fvecs", n=30, d=4))
    raw = np.fromfile(path, dtype="<i4").reshape(30, 5)
    raw[17, 0] = 9
    raw.tofile(path)
    vf = open_vectors(str(path))  # first and last headers are fine
    with pytest.raises(InputError, match=r"record 17 says d=9 but the first says d=4"):
        for _ in vf.blocks(block_size=8):
            pass
    with pytest.raises(InputError, match="record 17"):
        vf.read_rows(np.array([2, 17]))
    np.testing.assert_array_equal(vf.read_rows(np.array([16, 18])).shape, (2, 4))


def test_wrong_header_in_last_record_caught_at_open(tmp_path):
    path = tmp_path / "x.ivecs"
    write_vectors(str(path), _sample("ivecs", n=6, d=4))
    raw = np.fromfile(path, dtype="<i4").reshape(6, 5)
    raw[5, 0] = 3
    raw.tofile(path)
    with pytest.raises(InputError, match="record 5"):
        open_vectors(str(path))


@pytest.mark.parametrize("d", [0, -4])
def test_texmex_nonpositive_d(tmp_path, d):
    path = tmp_path / "x.fvecs"
    np.array([d, 0, 0, 0], dtype="<i4").tofile(path)
    with pytest.raises(InputError, match=f"dimension {d}"):
        open_vectors(str(path))


def test_texmex_absurd_d_is_size_error_not_crash(tmp_path):
    path = tmp_path / "x.bvecs"
    np.array([2**31 - 1, 0, 0, 0], dtype="<i4").tofile(path)
    with pytest.raises(InputError, match="not a multiple of the record size"):
        open_vectors(str(path))


def test_bigann_zero_d_and_zero_n(tmp_path):
    path = tmp_path / "x.fbin"
    np.array([5, 0], dtype="<u4").tofile(path)
    with pytest.raises(InputError, match="d=0"):
        open_vectors(str(path))
    np.array([0, 5], dtype="<u4").tofile(path)
    with pytest.raises(InputError, match="n=0"):
        open_vectors(str(path))


def test_bigann_size_mismatch_names_expected_bytes(tmp_path):
    path = tmp_path / "x.u8bin"
    write_vectors(str(path), _sample("u8bin", n=4, d=3))
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(InputError, match=r"size 21 but header n=4, d=3 needs 20 bytes"):
        open_vectors(str(path))


def test_npy_one_dimensional(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(5, dtype=np.float32))
    with pytest.raises(InputError, match=r"not 2-D"):
        open_vectors(str(path))


def test_npy_object_array_refused_without_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    np.save(path, np.array([[1, None]], dtype=object), allow_pickle=True)
    real_load = np.load

    def guarded_load(*args, **kwargs):
        assert not kwargs.get("allow_pickle", False), "allow_pickle=True must never be used"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", guarded_load)
    with pytest.raises(InputError, match="Python objects"):
        open_vectors(str(path))


def test_npy_non_numeric_refused(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.array([["a", "b"]]))
    with pytest.raises(InputError, match="not real numeric"):
        open_vectors(str(path))


def test_npy_garbage_refused(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(b"not a numpy file at all")
    with pytest.raises(InputError, match="not a valid .npy"):
        open_vectors(str(path))


# --- real data ------------------------------------------------------------------------------


def test_real_siftsmall():
    if not SIFTSMALL.is_dir():
        pytest.skip("needs ../shared/data (real SIFT files)")
    base = open_vectors(str(SIFTSMALL / "siftsmall_base.fvecs"))
    assert (base.format, base.n, base.d, base.dtype) == ("fvecs", 10000, 128, np.float32)
    lo, hi = np.inf, -np.inf
    for _, b in base.blocks(4096):
        assert (b == np.round(b)).all()
        lo, hi = min(lo, b.min()), max(hi, b.max())
    assert 0 <= lo and hi <= 180
    gt = open_vectors(str(SIFTSMALL / "siftsmall_groundtruth.ivecs"))
    assert (gt.n, gt.d, gt.dtype) == (100, 100, np.int32)
    ids = gt.read_all()
    assert ids.min() >= 0 and ids.max() < base.n
