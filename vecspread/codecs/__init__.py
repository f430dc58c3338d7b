"""The ``encode --codec`` registry: codec name -> its spec (hyper-parameters, class), the class imported
only when used.

Adding a codec: its package (a light ``__init__`` with its ``SPEC``, a module with the Codec subclass),
one line in ``REGISTRY``, and its test (``tests/codecs/``, and its options in the conformance suite).
"""

from __future__ import annotations

from vecspread.registry import Registry

REGISTRY = Registry.of_packages("codec", "--codec", [
    "vecspread.codecs.sign",
    "vecspread.codecs.lattice",
    "vecspread.codecs.pq",  # pq, opq, lsq
    "vecspread.codecs.l2lsh",
    "vecspread.codecs.flat",
])

CODEC_NAMES: tuple[str, ...] = REGISTRY.names
