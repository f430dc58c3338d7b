"""The Python API: an :class:`Index` over a transform and a codec, saved as the files the CLI reads.

In faiss's words, an index is trained (``train``), filled (``add``) and queried (``search``); here it is a
transform (the spreading map, or a baseline's projection) followed by a codec (sign bits, the spherical
lattice, PQ...), scanned by the codec's scanner. ``save`` writes a model file (before ``add``) or a codes
file (after), the very artifacts ``vecspread train`` and ``vecspread encode`` write, and :func:`load` reads
either back::

    import vecspread
    index = vecspread.Index.from_method("catalyzer", dout=24, epochs=8)
    index.train(xt)                      # (n, d) float32 training vectors
    index.add(xb)                        # the database
    D, I = index.search(xq, k=10)        # (nq, 10) float32 distances, int64 ids
    index.save("db.codes.h5")            # `vecspread search db.codes.h5 data.h5` reads it

The transforms and codecs are scikit-learn style estimators (keyword hyper-parameters, ``fit``,
``transform``, ``get_params`` / ``set_params``); ``vecspread.Catalyzer(dout=24).fit(xt).transform(x)``
works alone too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vecspread.errors import ConfigError
from vecspread.runtime import RunSettings

#: database vectors encoded at a time by :meth:`Index.add`
ADD_BLOCK = 65536


class Index:
    """A fitted (or to-be-fitted) ``transform`` and ``codec``, and the codes of the vectors added.

    ``codes`` is the (ntotal, code_size) uint8 array of everything added, in order (ids 0..ntotal-1).
    """

    def __init__(self, transform: Any, codec: Any) -> None:
        if codec is None:
            raise ConfigError("an Index needs a codec (e.g. vecspread.LatticeCodec(bits=64) or SignCodec())")
        self.transform = transform
        self.codec = codec
        self.codes = np.zeros((0, 0), np.uint8)
        self._trained = _is_fitted(transform) and _is_fitted(codec)
        self._searcher: tuple[Any, Any] | None = None

    @classmethod
    def from_method(cls, method: str, codec: Any = None, **params: Any) -> "Index":
        """The transform and codec of ``vecspread train --method METHOD`` with ``params`` (the options'
        names, e.g. ``dout=24``), unfitted. ``codec`` replaces the method's own codec (a name such as
        "pq" with its ``params``, or a codec object); a method without a codec needs one."""
        from vecspread.codecs import REGISTRY as CODECS
        from vecspread.stages.train import make_method

        method_params = dict(params)
        codec_obj = None
        if isinstance(codec, str):
            codec_params = {k: method_params.pop(k) for k in list(method_params) if k in CODECS[codec].params}
            codec_obj = CODECS.create(codec, codec_params)
        elif codec is not None:
            codec_obj = codec
        transform, own_codec, run = make_method(method, method_params)
        index = cls(transform, codec_obj or own_codec)
        index.run = run
        return index

    # -- faiss's verbs --------------------------------------------------------------------------

    @property
    def is_trained(self) -> bool:
        return self._trained

    @property
    def ntotal(self) -> int:
        return int(self.codes.shape[0])

    @property
    def d(self) -> int:
        return int(self.transform.d_in)

    def train(self, xt: np.ndarray, *, run: RunSettings | None = None, progress: Any = None) -> "Index":
        """Fit the transform on (n, d) training vectors (unless fitted already), then the codec on their
        transformed copies, as ``vecspread train`` does."""
        from vecspread.stages.train import codec_training_set

        xt = np.ascontiguousarray(xt, dtype=np.float32)
        if not _is_fitted(self.transform):
            self.transform.fit(xt, progress=progress, run=run or getattr(self, "run", None))
        if not _is_fitted(self.codec):
            self.codec.fit(codec_training_set(self.codec, self.transform, xt))
        self._trained = True
        return self

    def add(self, xb: np.ndarray) -> "Index":
        """Encode (n, d) database vectors and append their codes (ids continue from ``ntotal``)."""
        self._require_trained("add")
        xb = np.ascontiguousarray(xb, dtype=np.float32)
        parts = [self.codes] if self.ntotal else []
        for start in range(0, len(xb), ADD_BLOCK):
            parts.append(self.codec.encode(self.transform.apply(xb[start : start + ADD_BLOCK])))
        if parts:
            self.codes = np.ascontiguousarray(np.concatenate(parts), dtype=np.uint8)
        self._searcher = None
        return self

    def search(self, xq: np.ndarray, k: int, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """(D, I) of the k best codes for each of the (nq, d) queries: (nq, k) float32 distances (the
        scanner's own) and int64 ids, best first. ``options``: the search options of ``vecspread search``
        (e.g. ``tables=8, bits_per_table=16`` for hash tables). The codes' search-ready form is built at
        the first search and kept until the next ``add`` or ``reset`` (:meth:`searcher`)."""
        self._require_trained("search")
        if not 1 <= k <= self.ntotal:
            raise ConfigError(f"k must be in 1..{self.ntotal} (the vectors added), got {k}")
        result = self.searcher(**options).search(np.ascontiguousarray(xq, dtype=np.float32), k)
        return result.D, result.I

    def searcher(self, **options: Any) -> Any:
        """The :class:`vecspread.searcher.Searcher` over the codes added (built once per set of options)."""
        from vecspread.searcher import Searcher

        key = tuple(sorted(options.items()))
        if self._searcher is None or self._searcher[0] != key:
            self._searcher = (key, Searcher(self.transform, self.codec, self.codes, options=options))
        return self._searcher[1]

    def reset(self) -> "Index":
        """Forget the vectors added (the fitted transform and codec stay)."""
        self.codes = np.zeros((0, 0), np.uint8)
        self._searcher = None
        return self

    # -- files ----------------------------------------------------------------------------------

    def save(self, path: str) -> str:
        """Write a model file (nothing added yet) or a codes file (after ``add``): the artifacts of
        ``vecspread train`` / ``vecspread encode``, readable by every stage. Returns the path."""
        from vecspread.io.artifacts import components_fingerprint, write_artifact
        from vecspread.io.components import write_component
        from vecspread.models import write_model

        self._require_trained("save")
        params = {"method": self.transform.name, **self.transform.get_config(), "written_by": "vecspread.Index"}
        if self.ntotal == 0:
            write_model(path, self.transform, self.codec, params=params, inputs=[])
            return path
        size = self.codes.nbytes + sum(np.asarray(a).nbytes for a in self.transform.get_weights().values())
        with write_artifact(path, "codes", params={"codec": self.codec.name, **self.codec.get_config(),
                                                   "method": self.transform.name},
                            inputs=[], expected_bytes=size) as f:
            f.create_dataset("codes", data=self.codes, chunks=(max(1, min(self.ntotal, 1 << 16)), self.codes.shape[1]))
            write_component(f.create_group("transform"), self.transform.name, self.transform.get_config(),
                            self.transform.get_weights())
            write_component(f.create_group("codec"), self.codec.name, self.codec.get_config(), self.codec.get_arrays())
            f.attrs["components_fingerprint"] = components_fingerprint(f)
        return path

    def _require_trained(self, what: str) -> None:
        if not self._trained:
            raise ConfigError(f"Index.{what}: train the index first (index.train(xt))")

    def __repr__(self) -> str:
        return f"Index({self.transform!r}, {self.codec!r}, ntotal={self.ntotal})"


def load(path: str) -> Index:
    """The :class:`Index` of a model file (no codes) or a codes file (its codes added), as written by
    the CLI or by :meth:`Index.save`. Every check of the CLI applies (fingerprints, safety)."""
    from vecspread.io.artifacts import open_artifact
    from vecspread.models import load_codec, open_codes, open_model

    with open_artifact(path, ("model", "codes")) as art:
        kind = art.kind
    if kind == "codes":
        art, transform, codec = open_codes(path)
        with art:
            codes = art.read("codes")
        index = Index(transform, codec)
        index.codes = np.ascontiguousarray(codes, dtype=np.uint8)
        return index
    art, transform = open_model(path)
    with art:
        if not art.has("codec"):
            raise ConfigError(f"{path}: the model has no codec; give one: vecspread.Index(load_transform(...), codec)")
        codec = load_codec(art)
    return Index(transform, codec)


def load_transform(path: str) -> Any:
    """The fitted transform of a model or codes file."""
    from vecspread.io.artifacts import open_artifact
    from vecspread.models import load_transform as from_artifact

    with open_artifact(path, ("model", "codes")) as art:
        return from_artifact(art)


def _is_fitted(obj: Any) -> bool:
    """Whether a transform or codec holds learned state (scikit-learn's convention: attributes ending in _)."""
    return any(k.endswith("_") and not k.startswith("_") for k in vars(obj))
