"""Output names derived from the inputs, so that the shortest pipeline needs no ``-o``.

``import sift_base.fvecs`` writes ``sift.h5``; ``gt sift.h5`` writes ``sift.gt.h5``; ``train sift.h5``
writes ``sift.catalyzer.model.h5``; ``encode sift.catalyzer.model.h5 sift.h5`` writes
``sift.catalyzer.codes.h5`` (``sift.catalyzer.pq.codes.h5`` with ``--codec pq``); ``search`` on those
codes writes ``sift.catalyzer.res.h5``. Names go in the current directory (the inputs' may be read-only),
as a compiler writes ``foo.o`` for ``foo.c``. Only the standard library: the command line uses it.
"""

from __future__ import annotations

from pathlib import Path

#: endings dropped from an input's name to find what it is "of"
_ENDINGS = (".h5", ".hdf5", ".fvecs", ".bvecs", ".ivecs", ".fbin", ".u8bin", ".i8bin", ".ibin", ".npy")
_BASE_SUFFIXES = ("_base", "-base", ".base")


def stem(path: str, *kinds: str) -> str:
    """The name of ``path`` without its file ending and, then, without a trailing ``.KIND`` of ``kinds``."""
    name = Path(path).name
    for ending in _ENDINGS:
        if name.lower().endswith(ending) and len(name) > len(ending):
            name = name[: -len(ending)]
            break
    for kind in kinds:
        if name.endswith("." + kind) and len(name) > len(kind) + 1:
            name = name[: -len(kind) - 1]
            break
    return name


def imported(base: str) -> str:
    name = stem(base)
    for suffix in _BASE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return f"{name}.h5"


def groundtruth(dataset: str) -> str:
    return f"{stem(dataset)}.gt.h5"


def model(dataset: str, method: str) -> str:
    return f"{stem(dataset)}.{method}.model.h5"


def codes(model_path: str, codec: str | None) -> str:
    return f"{stem(model_path, 'model')}{'.' + codec if codec else ''}.codes.h5"


def results(codes_path: str) -> str:
    return f"{stem(codes_path, 'codes')}.res.h5"
