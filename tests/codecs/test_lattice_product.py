"""Products of spherical lattices (codes past 64 bits) against brute-force enumeration on small layouts."""

from __future__ import annotations

import itertools
import json
import math

import faiss
import numpy as np
import pytest

from conftest import assert_one_line_error, cli_ok, run_cli
from vecspread.codecs.lattice.codec import LatticeCodec
from vecspread.codecs.lattice.combinatorics import r2_for_bits
from vecspread.codecs.lattice.layout import Block, describe_layout, layout_for, split_evenly
from vecspread.distances import unit_rows
from vecspread.errors import ConfigError, InputError
from vecspread.scanners import choose

faiss.omp_set_num_threads(1)


def sphere(d: int, r2: int) -> list[tuple[int, ...]]:
    """Every z in Z^d with ||z||^2 = r2, by itertools.product over the cube (independent of the module)."""
    r = math.isqrt(r2)
    return [z for z in itertools.product(range(-r, r + 1), repeat=d) if sum(v * v for v in z) == r2]


def product_unit_points(layout: tuple[Block, ...]) -> np.ndarray:
    """(N, d) float64: every product point as a unit vector, blocks z_b / r_b side by side / sqrt(n_blocks)."""
    per_block = [np.array(sphere(b.dim, b.r2), np.float64) / math.sqrt(b.r2) for b in layout]
    rows = [np.concatenate(parts) for parts in itertools.product(*per_block)]
    return np.array(rows) / math.sqrt(len(layout))


def fitted(d: int, **kwargs) -> LatticeCodec:
    return LatticeCodec(**kwargs).fit(np.zeros((1, d), np.float32))


SMALL = [  # (d, codec options): layouts small enough to enumerate every product point
    (4, {"r2": 2, "blocks": 2}),  # 2 x S_2 (r2 2): 4 x 4 points
    (6, {"r2": 3, "blocks": 2}),  # 2 x S_3 (r2 3): 8 x 8
    (5, {"r2": 2, "blocks": 2}),  # 3 + 2 dimensions: 12 x 4
    (6, {"r2": 5, "blocks": 3}),  # 3 x S_2 (r2 5): 8^3
]


@pytest.mark.parametrize("d,opts", SMALL)
def test_point_counts_match_enumeration(d, opts):
    layout = layout_for(d, **opts)
    info = describe_layout(layout)
    counts = [len(sphere(b.dim, b.r2)) for b in layout]
    assert [b["n_points"] for b in info["blocks"]] == counts
    assert info["n_points"] == math.prod(counts) == len(product_unit_points(layout))
    assert info["bits"] == sum((c - 1).bit_length() for c in counts)
    assert info["code_size"] == sum(((c - 1).bit_length() + 7) // 8 for c in counts)


@pytest.mark.parametrize("d,opts", SMALL)
def test_encode_decode_is_the_nearest_product_point(d, opts):
    codec = fitted(d, **opts)
    points = product_unit_points(codec.layout_)
    rng = np.random.default_rng(d)
    y = rng.standard_normal((300, d)).astype(np.float32) * rng.uniform(0.01, 100, (300, 1)).astype(np.float32)
    x = codec.decode(codec.encode(y)).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-6)
    q = unit_rows(y).astype(np.float64)
    best = (q @ points.T).max(axis=1)  # nearest unit point = largest inner product
    np.testing.assert_allclose((q * x).sum(axis=1), best, atol=1e-5)
    assert (codec.quantize(y) == codec.decode(codec.encode(y))).all()


@pytest.mark.parametrize("d,opts", SMALL)
def test_every_product_point_round_trips_to_a_distinct_code(d, opts):
    codec = fitted(d, **opts)
    points = product_unit_points(codec.layout_).astype(np.float32)
    codes = codec.encode(points)
    assert codes.shape == (len(points), codec.code_size) and codes.dtype == np.uint8
    assert len(np.unique(codes, axis=0)) == len(points)
    np.testing.assert_allclose(codec.decode(codes), points, atol=1e-6)
    again = LatticeCodec.from_state(codec.get_config(), {})
    assert again.layout_ == codec.layout_ and (again.encode(points) == codes).all()


def test_the_rule_for_bits():
    assert layout_for(24, bits=64) == (Block(24, 79),)  # one block: the lattice as before, r2 79
    assert layout_for(48, bits=128) == (Block(24, 79), Block(24, 79))
    assert layout_for(36, bits=96) == (Block(18, r2_for_bits(18, 48)),) * 2
    assert layout_for(96, bits=256) == (Block(24, 79),) * 4
    assert [b.dim for b in layout_for(50, bits=136)] == [17, 17, 16]  # 17 bytes: 6 + 6 + 5
    assert [b.r2 for b in layout_for(50, bits=136)] == [r2_for_bits(17, 48), r2_for_bits(17, 48), r2_for_bits(16, 40)]
    assert len(layout_for(48, bits=128, blocks=4)) == 4 and layout_for(48, bits=128, blocks=4)[0] == Block(12, r2_for_bits(12, 32))
    assert split_evenly(50, 3) == [17, 17, 16] and split_evenly(16, 2) == [8, 8]
    for d, bits in ((24, 64), (16, 32), (8, 13)):  # up to 64 bits, one block exactly as the plain lattice
        one = fitted(d, bits=bits)
        assert one.n_blocks == 1 and one.r2_ == r2_for_bits(d, bits) and "blocks" not in one.get_config()


def test_product_codes_are_the_blocks_codes_side_by_side():
    product = fitted(48, bits=128)
    single = fitted(24, bits=64)
    y = np.random.default_rng(0).standard_normal((200, 48)).astype(np.float32)
    codes = product.encode(y)
    assert codes.shape == (200, 16)
    assert (codes[:, :8] == single.encode(y[:, :24])).all() and (codes[:, 8:] == single.encode(y[:, 24:])).all()
    y[:5, 24:] = 0  # a block without direction gets rank 0, the other block is unaffected
    assert (product.encode(y)[:5, 8:] == 0).all() and (product.encode(y)[:5, :8] == single.encode(y[:5, :24])).all()


@pytest.mark.parametrize("d,opts", [(48, {"bits": 128}), (30, {"bits": 72}), (6, {"r2": 5, "blocks": 3}),
                                    (20, {"bits": 96, "blocks": 4})])
def test_product_scan_equals_float64_brute_force(d, opts):
    """The scanner against D = ||q||^2 + 1 - 2 <q, x> over the decoded unit vectors, in float64 (equal
    radii in 48/128, unequal in 30/72: 5 + 4 bytes; nibble points in 6 and 20)."""
    codec = fitted(d, **opts)
    rng = np.random.default_rng(3)
    codes = codec.encode(rng.standard_normal((2000, d)).astype(np.float32))
    codes[-30:] = codes[:30]
    yq = rng.standard_normal((9, d)).astype(np.float32)
    yq[2] = 0
    x = codec.decode(codes).astype(np.float64)
    q = unit_rows(yq).astype(np.float64)
    ref = np.maximum((q * q).sum(1, keepdims=True) + 1 - 2 * q @ x.T, 0)
    res = choose(codec, {}).search(yq, iter([codes[:700], codes[700:]]), 25)
    np.testing.assert_allclose(res.D, np.take_along_axis(ref, res.I, 1), atol=1e-5)
    kth = np.sort(ref, axis=1)[:, 24:25]
    assert (np.take_along_axis(ref, res.I, 1) <= kth + 1e-6).all()  # the 25 nearest, up to float ties
    assert (res.D[2] == 1).all() and res.I[2].tolist() == list(range(25))
    again = choose(codec, {}).search(yq, iter([codes]), 25)
    assert (again.I == res.I).all() and (again.D == res.D).all()  # independent of the blocks


@pytest.mark.parametrize("kwargs,d,needle", [
    ({"bits": 100}, 48, "multiple of 8"),
    ({"bits": 128, "blocks": 1}, 48, "use --blocks 2"),
    ({"bits": 64, "blocks": 1}, 65, "--blocks 2 or more"),
    ({"r2": 3, "blocks": 7}, 6, "--blocks 6 or fewer"),
    ({"r2": 7, "blocks": 2}, 6, "r2=7"),
])
def test_impossible_layouts_are_refused_with_a_fix(kwargs, d, needle):
    with pytest.raises(ConfigError, match=needle):
        fitted(d, **kwargs)


def test_damaged_product_codes_and_states_are_refused():
    codec = fitted(6, r2=3, blocks=2)
    codes = codec.encode(np.eye(6, dtype=np.float32))
    bad = codes.copy()
    bad[:, -1] = 255  # block 1's rank >= 8
    with pytest.raises(InputError, match="block 1"):
        codec.decode(bad)
    with pytest.raises(InputError, match="do not make d=7"):
        LatticeCodec.from_state({"d": 7, "blocks": [[3, 3], [3, 3]]}, {})
    with pytest.raises(InputError, match="code_size"):
        LatticeCodec.from_state({**codec.get_config(), "code_size": 3}, {})
    with pytest.raises(InputError):
        LatticeCodec.from_state({"d": 6, "blocks": [[3, 7], [3, 3]]}, {})  # r2 7: no point in Z^3


def test_atoms_reports_product_layouts():
    out = json.loads(cli_ok("atoms", "--dim", 48, "--bits", 128, "--json"))
    assert out["bits"] == 128 and out["code_size"] == 16 and len(out["blocks"]) == 2
    assert out["blocks"][0] == {"dim": 24, "r2": 79, "bits": 64, "bytes": 8, "n_points": "17319684851070915840"}
    assert int(out["n_points"]) == 17319684851070915840 ** 2
    text = cli_ok("atoms", "--dim", 48, "--bits", 128)
    assert "24-d r2 79 (64 bits) + 24-d r2 79 (64 bits)" in text
    four = json.loads(cli_ok("atoms", "--dim", 48, "--bits", 128, "--blocks", 4, "--json"))
    assert [b["dim"] for b in four["blocks"]] == [12] * 4
    rc, _, err = run_cli("atoms", "--dim", 48, "--bits", 128, "--list")
    assert_one_line_error(rc, err) and "one block" in err


def test_a_block_capped_at_r2_512_says_it_carries_fewer_bits(syn, tmp_path):
    short = fitted(8, bits=64)  # S_8 at r2 512 (faiss's limit) holds 2^31..2^32 points
    assert short.code_bits == 32 and short.layout_ == (Block(8, 512),)
    assert "32 of the 64 bits asked" in short.fit_notes()[0]
    two = fitted(12, bits=128).fit_notes()[0]  # 2 blocks of 6 dimensions, 22 bits each at r2 512
    assert "44 of the 128 bits asked" in two and "--dout" in two and "--bits 44" not in two  # 44: no product
    assert fitted(24, bits=64).fit_notes() == [] and fitted(48, bits=128).fit_notes() == []
    assert fitted(8, r2=512).fit_notes() == []  # a radius given by hand is what was asked
    model, codes = tmp_path / "pca8.h5", tmp_path / "c.h5"
    cli_ok("train", syn.h5, "--method", "pca", "--dout", 8, "-o", model)
    rc, _, err = run_cli("encode", model, syn.h5, "--codec", "lattice", "--bits", 64, "-o", codes)
    assert rc == 0 and "carry 32 of the 64 bits asked" in err and "--bits 32" in err
    rc, _, err = run_cli("encode", model, syn.h5, "--codec", "lattice", "--bits", 32, "-o", codes)
    assert rc == 0 and "bits asked" not in err
    rc, _, err = run_cli("train", syn.h5, "--method", "catalyzer", "--dout", 8, "--bits", 64, "--epochs", 1,
                         "--dint", 16, "-o", tmp_path / "cat8.h5")
    assert rc == 0 and "carry 32 of the 64 bits asked" in err  # said before training, not only at encode
