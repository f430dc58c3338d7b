"""vecspread.io.safety, preflight and fingerprints on hand-made HDF5 files (the CLI cases are in
tests/cli/test_hostile.py)."""

from __future__ import annotations

import json
import os
import signal
import time

import h5py
import numpy as np
import pytest

from vecspread.errors import InputError
from vecspread.io import fingerprints, preflight, safety
from vecspread.io.artifacts import differences


def _file(path, **members):
    with h5py.File(path, "w") as f:
        for name, value in members.items():
            f[name] = value
    return path


def test_member_follows_hard_and_inner_soft_links_only(tmp_path):
    other = _file(tmp_path / "other.h5", x=np.ones((4, 2), np.float32))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["a/x"] = np.zeros((4, 2), np.float32)
        f["soft"] = h5py.SoftLink("/a/x")
        f["relative"] = h5py.SoftLink("a/x")
        f["ext"] = h5py.ExternalLink(str(other), "/x")
        f["a/ext"] = h5py.ExternalLink(str(other), "/x")
        f["via"] = h5py.SoftLink("/ext")
        f["nowhere"] = h5py.SoftLink("/missing")
        f["loop1"] = h5py.SoftLink("/loop2")
        f["loop2"] = h5py.SoftLink("/loop1")
        for name in ("a/x", "soft", "relative"):
            assert safety.member(f, name, "f.h5").shape == (4, 2)
        for name, reason in (("ext", "external link"), ("a/ext", "external link"), ("via", "external link"),
                             ("nowhere", "soft link leads nowhere"), ("loop1", "loop of soft links")):
            with pytest.raises(InputError, match=reason):
                safety.member(f, name, "f.h5")


def test_external_storage_virtual_and_non_numeric_members_are_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.arange(8, dtype=np.float32).tobytes())
    other = _file(tmp_path / "other.h5", x=np.ones(8, np.float32))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("external", shape=(8,), dtype="f4", external=[(str(raw), 0, 32)])
        layout = h5py.VirtualLayout(shape=(8,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(other), "x", shape=(8,))
        f.create_virtual_dataset("virtual", layout)
        f["text"] = np.array([b"a", b"b"])
        for name, reason in (("external", "keeps its bytes in another file"), ("virtual", "virtual dataset"),
                             ("text", "expected numbers")):
            with pytest.raises(InputError, match=reason):
                safety.member(f, name, "f.h5")
        assert safety.member(f, "text", "f.h5", numeric=False).shape == (2,)  # text is fine where text is read
        assert safety.unsafe_reason(f["external"]) == "external" and safety.unsafe_reason(f["virtual"]) == "virtual"


def test_a_claim_the_file_does_not_back_is_refused(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f.create_dataset("huge", shape=(10**12, 32), dtype="f4", chunks=(1024, 32))
        f.create_dataset("fine", shape=(1000, 32), dtype="f4", chunks=(100, 32))  # sparse but small: allowed
        with pytest.raises(InputError, match="claims"):
            safety.member(f, "huge", "f.h5")
        assert safety.member(f, "fine", "f.h5").shape == (1000, 32)
        assert safety.unsafe_reason(f["huge"]) is not None
        fingerprints.record(f)  # never reads the 10^12 rows (it would not end)


def test_check_group_refuses_any_link_below_it(tmp_path):
    other = _file(tmp_path / "other.h5", x=np.ones(2))
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["g/w"] = np.ones(2)
        safety.check_group(f["g"], "f.h5")
        f["g/sub/ext"] = h5py.ExternalLink(str(other), "/x")
        with pytest.raises(InputError, match="external link"):
            safety.check_group(f["g"], "f.h5")


def test_reading_turns_h5py_errors_into_one_input_error():
    with pytest.raises(InputError, match="f.h5: cannot be read, the file is damaged"):
        with safety.reading("f.h5"):
            raise RuntimeError("Link visitation failed (message not aligned)\nmore")
    with pytest.raises(InputError, match="already one"):
        with safety.reading("f.h5"):
            raise InputError("already one")


# --------------------------------------------------------------------------------------------
# preflight: HDF5 parsing in a child with a time bound


def test_preflight_passes_a_sound_file_quickly(tmp_path):
    path = _file(tmp_path / "f.h5", x=np.ones((10, 4), np.float32))
    t0 = time.perf_counter()
    preflight.preflight(str(path), "dataset")
    assert time.perf_counter() - t0 < preflight.BASE_SECONDS


def test_preflight_refuses_a_file_hdf5_loops_on(tmp_path, monkeypatch):
    path = _file(tmp_path / "f.h5", x=np.ones(3))
    monkeypatch.setattr(preflight, "walk_metadata", lambda p: time.sleep(60))  # as HDF5 does on some damage
    monkeypatch.setattr(preflight, "BASE_SECONDS", 0.3)
    with pytest.raises(InputError, match="did not finish parsing its metadata"):
        preflight.preflight(str(path), "dataset")


def test_preflight_refuses_a_file_hdf5_crashes_on(tmp_path, monkeypatch):
    path = _file(tmp_path / "f.h5", x=np.ones(3))
    monkeypatch.setattr(preflight, "walk_metadata", lambda p: os.kill(os.getpid(), signal.SIGSEGV))
    with pytest.raises(InputError, match="crashes parsing it .SIGSEGV."):
        preflight.preflight(str(path), "model")


def test_preflight_leaves_python_errors_to_the_stage(tmp_path, monkeypatch):
    path = _file(tmp_path / "f.h5", x=np.ones(3))
    monkeypatch.setattr(preflight, "walk_metadata", lambda p: 1 / 0)
    preflight.preflight(str(path), "model")  # the stage's own open reports what is wrong


# --------------------------------------------------------------------------------------------
# fingerprints name what changed


def test_differences_name_members_attributes_links_and_the_record(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.attrs["vecspread_kind"] = "model"
        f["transform/w"] = np.arange(6, dtype=np.float32)
        f["transform"].attrs["config"] = json.dumps({"a": 1})
        f["codes"] = np.zeros((3, 2), np.uint8)
        fingerprints.record(f)
        assert differences(f) == []
    changes = {
        "member 'transform/w'": lambda f: f["transform/w"].__setitem__(0, 9.0),
        "attribute 'config' of /transform": lambda f: f["transform"].attrs.__setitem__("config", '{"a": 2}'),
        "attribute 'vecspread_kind' of /": lambda f: f.attrs.__setitem__("vecspread_kind", "codes"),
        "link /alias": lambda f: f.__setitem__("alias", h5py.SoftLink("/codes")),
        "fingerprint": lambda f: f.attrs.__setitem__("fingerprint", "0" * 32),
    }
    for expected, change in changes.items():
        copy = tmp_path / "copy.h5"
        copy.write_bytes(path.read_bytes())
        with h5py.File(copy, "r+") as f:
            change(f)
        with h5py.File(copy, "r") as f:
            assert differences(f) == [expected], expected


def test_provenance_is_not_content(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.ones(3)
        f.attrs["params"] = "{}"
        fingerprints.record(f)
        f.attrs["params"] = '{"edited": true}'
        f.attrs["created_by"] = "someone else"
        assert differences(f) == []
