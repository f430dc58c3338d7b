"""The ``encode --codec`` registry: codec name -> Codec class, imported only when used.

Adding a codec: a Codec subclass in its own module plus one line in ``_CODECS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vecspread.registry import load

if TYPE_CHECKING:
    from vecspread.codecs.base import Codec

_CODECS: dict[str, str] = {
    "sign": "vecspread.codecs.binary:SignCodec",
    "lattice": "vecspread.codecs.lattice:LatticeCodec",
    "pq": "vecspread.codecs.faiss_codecs:PQCodec",
    "opq": "vecspread.codecs.faiss_codecs:OPQCodec",
    "lsq": "vecspread.codecs.faiss_codecs:LSQCodec",
    "l2lsh": "vecspread.codecs.l2lsh:L2LSHCodec",
}

CODEC_NAMES: tuple[str, ...] = tuple(_CODECS)


def get_codec_class(name: str) -> type["Codec"]:
    """The Codec class registered as ``name`` (KeyError when unknown)."""
    return load(_CODECS[name])
