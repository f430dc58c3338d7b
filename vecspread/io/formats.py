"""Vector files that ``vecspread import`` accepts, read in blocks so memory never depends on n.

Every format holds an (n, d) array of one component dtype:

- TEXMEX ``.fvecs`` (float32), ``.ivecs`` (int32), ``.bvecs`` (uint8): each record is a
  little-endian int32 ``d`` followed by ``d`` components; all records share ``d``.
- big-ann-benchmarks ``.fbin`` (float32), ``.u8bin`` (uint8), ``.i8bin`` (int8), ``.ibin`` (int32):
  a header of two little-endian uint32 ``(n, d)``, then ``n * d`` components, row-major.
- ``.npy``: a 2-D numpy array of a real numeric dtype (loaded memory-mapped, never with pickle).

``open_vectors(path)`` picks the format from the extension (or ``fmt``) and returns a
``VectorFile``; ``write_vectors(path, x)`` writes one. Every problem a user can cause is an
``InputError`` with a one-line message that names the file and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from vecspread.errors import InputError
from vecspread.io.atomic import atomic_output

FORMATS: dict[str, str] = {
    "fvecs": "fvecs",
    "ivecs": "ivecs",
    "bvecs": "bvecs",
    "fbin": "fbin",
    "u8bin": "u8bin",
    "i8bin": "i8bin",
    "ibin": "ibin",
    "npy": "npy",
}
"""File extension (without the dot) -> format name."""


@dataclass(frozen=True)
class _Spec:
    layout: str  # "texmex", "bigann" or "npy"
    dtype: np.dtype | None  # little-endian component dtype on disk; None for npy (any numeric)


_SPECS: dict[str, _Spec] = {
    "fvecs": _Spec("texmex", np.dtype("<f4")),
    "ivecs": _Spec("texmex", np.dtype("<i4")),
    "bvecs": _Spec("texmex", np.dtype("u1")),
    "fbin": _Spec("bigann", np.dtype("<f4")),
    "u8bin": _Spec("bigann", np.dtype("u1")),
    "i8bin": _Spec("bigann", np.dtype("i1")),
    "ibin": _Spec("bigann", np.dtype("<i4")),
    "npy": _Spec("npy", None),
}

_WRITE_BLOCK_ROWS = 65536  # rows converted at a time when writing: bounds the temporary copies


class VectorFile:
    """An on-disk (n, d) array in one of FORMATS, read in blocks.

    ``dtype`` is the dtype of the stored components in native byte order (float32, int32,
    uint8 or int8 for the fixed formats; any real numeric dtype for .npy). Every array this
    class returns is a fresh C-contiguous copy in that dtype, never a view into the file.
    For TEXMEX files each record's dimension header is checked as its rows are read.
    """

    path: str
    format: str
    n: int
    d: int
    dtype: np.dtype

    def __init__(self, path: str, format: str, records: np.ndarray, n: int, d: int, dtype: np.dtype):
        # records: for TEXMEX a (n,) structured memmap with fields "d" (int32) and "x" (d,);
        # otherwise an (n, d) memmap. Built by open_vectors, not by callers.
        self.path = path
        self.format = format
        self.n = n
        self.d = d
        self.dtype = np.dtype(dtype)
        self._records = records
        self._texmex = records.dtype.names is not None

    @property
    def shape(self) -> tuple[int, int]:
        """(n, d)."""
        return (self.n, self.d)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"VectorFile({self.path!r}, format={self.format!r}, n={self.n}, d={self.d}, dtype={self.dtype})"

    def blocks(self, block_size: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (start, block) with block (bs, d) in the stored dtype, C-contiguous, a copy.

        Blocks cover rows 0..n-1 in order; each has ``block_size`` rows except possibly the last.
        """
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        for start in range(0, self.n, block_size):
            stop = min(start + block_size, self.n)
            yield start, self._rows(self._records[start:stop], range(start, stop))

    def read_rows(self, ids: np.ndarray) -> np.ndarray:
        """Rows at the given int ids (any order, repeats allowed) as (len(ids), d) stored dtype.

        ``ids`` is a 1-D integer array with values in 0..n-1.
        """
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"ids must be a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
        if ids.size == 0:
            return np.empty((0, self.d), dtype=self.dtype)
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= self.n:
            bad = lo if lo < 0 else hi
            raise InputError(
                f"{self.path}: row id {bad} is outside 0..{self.n - 1}; "
                "the ids (e.g. ground truth) must come from this file"
            )
        # Reading each distinct row once, in file order, keeps page faults sequential.
        unique, inverse = np.unique(ids, return_inverse=True)
        rows = self._rows(self._records[unique], unique)
        return rows[inverse.reshape(-1)]

    def read_all(self) -> np.ndarray:
        """The whole (n, d) array in the stored dtype (memory: n * d * itemsize)."""
        out = np.empty((self.n, self.d), dtype=self.dtype)
        for start, block in self.blocks():
            out[start : start + len(block)] = block
        return out

    def _rows(self, records: np.ndarray, row_ids: np.ndarray | range) -> np.ndarray:
        """Copy records (from the memmap) to a (len, d) native array, checking TEXMEX headers.

        row_ids gives each record's row number, used only to name a bad record in the error.
        """
        if self._texmex:
            self._check_headers(records["d"], row_ids)
            records = records["x"]
        return np.array(records, dtype=self.dtype, order="C", copy=True)

    def _check_headers(self, headers: np.ndarray, row_ids: np.ndarray | range) -> None:
        bad = np.flatnonzero(headers != self.d)
        if bad.size:
            i = bad[0]
            raise InputError(
                f"{self.path}: record {int(row_ids[i])} says d={int(headers[i])} but the first says "
                f"d={self.d}; the file is corrupt or not .{self.format} (re-export it or pass --format)"
            )


def open_vectors(path: str, fmt: str | None = None) -> VectorFile:
    """Open a vector file; fmt overrides the extension.

    Raises InputError (one line, naming the file and the fix) for: a missing or unreadable
    file, an unknown extension, an empty file, a size inconsistent with the format, d <= 0,
    no vectors, or a .npy that is not a 2-D real numeric array.
    """
    path = os.fspath(path)
    fmt = _resolve_format(path, fmt)
    size = _readable_size(path)
    if size == 0:
        raise InputError(f"{path}: file is empty; give a file that holds vectors")
    opener = {"texmex": _open_texmex, "bigann": _open_bigann, "npy": _open_npy}[_SPECS[fmt].layout]
    try:
        return opener(path, fmt, size)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e}); check the file and its permissions") from e


def write_vectors(path: str, x: np.ndarray, fmt: str | None = None) -> None:
    """Write (n, d) array x in the format given by fmt or the extension.

    Components are converted to the format's dtype (float32, int32, uint8 or int8); values
    that do not fit (out of range, not integral for an integer format, NaN/inf for an integer
    format, finite but beyond float32's range) raise InputError. ``.npy`` keeps x's dtype,
    which must be real numeric. The file appears complete or not at all (written to a partial file
    beside it, then renamed: ``vecspread.io.atomic``).
    """
    path = os.fspath(path)
    fmt = _resolve_format(path, fmt)
    x = np.asarray(x)
    _check_writable_array(path, fmt, x)
    try:
        with atomic_output(path) as partial, open(partial, "wb") as f:
            _write_body(f, path, fmt, x)
    except OSError as e:
        raise InputError(f"{path}: cannot write ({e.strerror or e}); check the directory exists and is writable") from e


# --- choosing the format --------------------------------------------------------------------


def _resolve_format(path: str, fmt: str | None) -> str:
    """Format name from the explicit fmt (case-insensitive, leading dot allowed) or the extension."""
    known = ", ".join("." + ext for ext in FORMATS)
    if fmt is not None:
        name = fmt.strip().lower().lstrip(".")
        if name not in FORMATS:
            raise InputError(f"{path}: unknown format {fmt!r}; use one of {known}")
        return FORMATS[name]
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext not in FORMATS:
        shown = f"extension '.{ext}'" if ext else "no extension"
        raise InputError(f"{path}: {shown} is not a known vector format ({known}); rename the file or pass --format")
    return FORMATS[ext]


def _readable_size(path: str) -> int:
    """File size in bytes, after checking the path is a regular file we may open."""
    from vecspread.io.paths import readable_file

    try:
        readable_file(path, "input")
    except InputError as e:
        raise InputError(str(e).replace("input ", "", 1)) from None
    try:
        with open(path, "rb") as f:
            return os.fstat(f.fileno()).st_size
    except FileNotFoundError as e:
        raise InputError(f"{path}: no such file; check the path") from e
    except IsADirectoryError as e:
        raise InputError(f"{path}: is a directory; give a vector file") from e
    except PermissionError as e:
        raise InputError(f"{path}: permission denied; make the file readable") from e
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e}); check the file") from e


# --- readers --------------------------------------------------------------------------------


def _texmex_record(comp: np.dtype, d: int) -> np.dtype:
    """One TEXMEX record: int32 header then d components, packed (no alignment padding)."""
    return np.dtype([("d", "<i4"), ("x", comp, (d,))])


def _open_texmex(path: str, fmt: str, size: int) -> VectorFile:
    comp = _SPECS[fmt].dtype
    if size < 4:
        raise InputError(f"{path}: {size} bytes is too short for a .{fmt} record; the file is truncated or not .{fmt}")
    d = int(np.fromfile(path, dtype="<i4", count=1)[0])
    if d <= 0:
        raise InputError(
            f"{path}: first record has dimension {d} (must be > 0); the file is not .{fmt} (pass --format)"
        )
    record_bytes = 4 + d * comp.itemsize
    if size % record_bytes:
        raise InputError(
            f"{path}: size {size} is not a multiple of the record size {record_bytes} (d={d}); "
            f"the file is truncated or not .{fmt} (re-export it or pass --format)"
        )
    if record_bytes >= 2**31:  # numpy's limit on one (structured) element
        raise InputError(f"{path}: d={d} is too large for one record; the file is not .{fmt} (pass --format)")
    records = np.memmap(path, dtype=_texmex_record(comp, d), mode="r", shape=(size // record_bytes,))
    vf = VectorFile(path, fmt, records, n=len(records), d=d, dtype=comp.newbyteorder("="))
    # The last header is one cheap read and catches most wrong-format files at open time;
    # blocks() and read_rows() check every other header as they go.
    vf._check_headers(records["d"][-1:], range(vf.n - 1, vf.n))
    return vf


def _open_bigann(path: str, fmt: str, size: int) -> VectorFile:
    comp = _SPECS[fmt].dtype
    if size < 8:
        raise InputError(f"{path}: {size} bytes is too short for the 8-byte .{fmt} header; the file is truncated")
    n, d = (int(v) for v in np.fromfile(path, dtype="<u4", count=2))
    if d == 0:
        raise InputError(f"{path}: header says d=0 (must be > 0); the file is not .{fmt} (pass --format)")
    if n == 0:
        raise InputError(f"{path}: header says n=0; give a file that holds vectors")
    expected = 8 + n * d * comp.itemsize
    if fmt == "ibin" and size == 8 + n * d * 8:
        # big-ann-benchmarks ground truth (e.g. GT.public.1B.ibin): header n, k; the n x k int32 ids; then
        # the n x k float32 distances. The ids are the vectors here (import recomputes the distances).
        records = np.memmap(path, dtype=comp, mode="r", offset=8, shape=(n, d))
        return VectorFile(path, "ibin", records, n=n, d=d, dtype=comp.newbyteorder("="))
    if size != expected:
        raise InputError(
            f"{path}: size {size} but header n={n}, d={d} needs {expected} bytes; "
            f"the file is truncated or not .{fmt} (re-export it or pass --format)"
        )
    records = np.memmap(path, dtype=comp, mode="r", offset=8, shape=(n, d))
    return VectorFile(path, fmt, records, n=n, d=d, dtype=comp.newbyteorder("="))


def _open_npy(path: str, fmt: str, size: int) -> VectorFile:
    shape, dtype, data_offset = _npy_header(path)
    if dtype.hasobject:
        raise InputError(f"{path}: holds Python objects, which are never unpickled; save a numeric array instead")
    if dtype.kind not in "iuf":
        raise InputError(f"{path}: dtype {dtype} is not real numeric; save a float or integer array instead")
    if len(shape) != 2:
        raise InputError(f"{path}: array has shape {shape}, not 2-D (n, d); reshape it to (n, d) and save again")
    n, d = shape
    if d <= 0:
        raise InputError(f"{path}: array has shape {shape} with d=0; save vectors with d > 0")
    if n <= 0:
        raise InputError(f"{path}: array has shape {shape} with no vectors; give a file that holds vectors")
    if size < data_offset + n * d * dtype.itemsize:
        raise InputError(f"{path}: file is shorter than its {shape} {dtype} header says; the file is truncated")
    try:
        records = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise InputError(f"{path}: not a readable .npy ({e}); save it again with numpy.save") from e
    return VectorFile(path, fmt, records, n=n, d=d, dtype=dtype.newbyteorder("="))


def _npy_header(path: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) from a .npy header, read without touching the data."""
    fmtlib = np.lib.format
    with open(path, "rb") as f:
        try:
            major, _minor = fmtlib.read_magic(f)
            # Version 3 only allows utf-8 in structured field names; its layout is version 2's.
            read = fmtlib.read_array_header_1_0 if major == 1 else fmtlib.read_array_header_2_0
            shape, _fortran, dtype = read(f)
        except ValueError as e:
            raise InputError(f"{path}: not a valid .npy file ({e}); save it with numpy.save or pass --format") from e
        return tuple(shape), np.dtype(dtype), f.tell()


# --- writers --------------------------------------------------------------------------------


def _check_writable_array(path: str, fmt: str, x: np.ndarray) -> None:
    """Shape and dtype checks that need no pass over the values."""
    if x.ndim != 2:
        raise InputError(f"{path}: array to write has shape {x.shape}, not 2-D (n, d); reshape it to (n, d)")
    n, d = x.shape
    if n == 0 or d == 0:
        raise InputError(f"{path}: array to write has shape {x.shape}; it needs n > 0 vectors of d > 0")
    if x.dtype.hasobject or x.dtype.kind not in "iuf":  # the same dtypes open_vectors accepts
        raise InputError(f"{path}: array dtype {x.dtype} is not real numeric; convert it to numbers first")
    layout = _SPECS[fmt].layout
    if layout == "texmex" and d >= 2**31:
        raise InputError(f"{path}: d={d} does not fit the int32 header of .{fmt}; use .npy")
    if layout == "bigann" and (n >= 2**32 or d >= 2**32):
        raise InputError(f"{path}: shape {x.shape} does not fit the uint32 header of .{fmt}; use .npy")


def _write_body(f: BinaryIO, path: str, fmt: str, x: np.ndarray) -> None:
    spec = _SPECS[fmt]
    n, d = x.shape
    if spec.layout == "npy":
        np.lib.format.write_array(f, x, allow_pickle=False)
        return
    if spec.layout == "bigann":
        f.write(np.array([n, d], dtype="<u4").tobytes())
    for start in range(0, n, _WRITE_BLOCK_ROWS):
        block = _convert(path, fmt, x[start : start + _WRITE_BLOCK_ROWS], spec.dtype, start)
        if spec.layout == "texmex":
            block = _with_headers(block, spec.dtype)
        f.write(block.tobytes())


def _with_headers(block: np.ndarray, comp: np.dtype) -> np.ndarray:
    """(bs, d) components -> (bs,) TEXMEX records, each prefixed by d."""
    records = np.empty(len(block), dtype=_texmex_record(comp, block.shape[1]))
    records["d"] = block.shape[1]
    records["x"] = block
    return records


def _convert(path: str, fmt: str, block: np.ndarray, target: np.dtype, start: int) -> np.ndarray:
    """block cast to target, refusing values the cast would change (clipping, wrapping, rounding)."""
    if target.kind == "f":
        if block.dtype.kind == "f" and block.dtype.itemsize > target.itemsize:
            limit = np.finfo(target).max
            finite = block[np.isfinite(block)]
            if finite.size and np.abs(finite).max() > limit:
                raise InputError(
                    f"{path}: values beyond float32's range (abs > {limit:.3g}); scale the data before writing .{fmt}"
                )
        return block.astype(target)
    if block.dtype.kind == "f":
        if not np.isfinite(block).all():
            raise InputError(f"{path}: NaN or infinite values near row {start}; .{fmt} holds integers only")
        if (block != np.round(block)).any():
            raise InputError(
                f"{path}: non-integral values near row {start}; round them first or write .fvecs/.fbin/.npy"
            )
    info = np.iinfo(target)
    lo, hi = block.min(), block.max()
    if lo < info.min or hi > info.max:
        raise InputError(
            f"{path}: values {lo}..{hi} near row {start} do not fit {target.name} "
            f"({info.min}..{info.max}) of .{fmt}; rescale them or pick another format"
        )
    return block.astype(target)


# --- class labels -----------------------------------------------------------------------------


def read_labels(path: str, fmt: str | None = None) -> np.ndarray:
    """One non-negative integer class label per vector, as (n,) int64: a 1-D (or (n, 1)) integer ``.npy``,
    or an ``.ivecs`` / ``.ibin`` file of one component per row. InputError (one line) otherwise."""
    path = os.fspath(path)
    fmt = _resolve_format(path, fmt)
    if _SPECS[fmt].layout == "npy":
        if _readable_size(path) == 0:
            raise InputError(f"{path}: file is empty; give a file that holds labels")
        shape, dtype, _ = _npy_header(path)
        if dtype.hasobject:
            raise InputError(f"{path}: holds Python objects, which are never unpickled; save an integer array instead")
        if len(shape) == 2 and shape[1] == 1:
            shape = shape[:1]
        if len(shape) != 1 or dtype.kind not in "iu":
            raise InputError(f"{path}: labels must be a 1-D integer array (one class per vector), got {dtype} {shape}")
        labels = np.load(path, allow_pickle=False).reshape(-1)
    else:
        vf = open_vectors(path, fmt)
        if vf.d != 1 or vf.dtype.kind not in "iu":
            raise InputError(f"{path}: labels must be one integer per row, got {vf.d} {vf.dtype} components per row "
                             "(save them as .ivecs with d = 1, or as a 1-D .npy)")
        labels = vf.read_all().reshape(-1)
    labels = labels.astype(np.int64)
    if len(labels) == 0:
        raise InputError(f"{path}: holds no labels")
    if labels.min() < 0:
        raise InputError(f"{path}: label {int(labels.min())} at row {int(np.argmin(labels))} is negative; classes "
                         "are numbered from 0")
    return labels
