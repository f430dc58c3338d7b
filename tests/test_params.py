"""Hyper-parameter declarations (vecspread.params) and the command-line options made from them
(vecspread.cli_options): checks, defaults, refusals, and one option per declared name in the CLI."""

from __future__ import annotations

import inspect
import re

import pytest

from conftest import run_cli
from vecspread.cli_options import build_options, codec_options, compose_help, method_options, scanner_options
from vecspread.errors import ConfigError
from vecspread.params import Configurable, Param, ParamSet, positive_floats, positive_ints


class Toy(Configurable):
    kind = "--method"
    name = "toy"
    params = ParamSet(
        Param("width", int, 8, "Width", ge=1, multiple_of=4),
        Param("rate", float, 0.5, "Rate", gt=0, lt=1),
        Param("mode", str, "a", "Mode", choices=("a", "b")),
        Param("flag", bool, False, "Flag"),
        Param("bits", int, help="Bits", required=True),
    )


def test_defaults_checks_and_refusals():
    t = Toy(bits=16)
    assert (t.width, t.rate, t.mode, t.flag, t.bits) == (8, 0.5, "a", False, 16)
    assert Toy(bits=16, width=None).width == 8  # None is "not given"
    for bad, needle in [({"width": 0}, r"--width must be at least 1, got 0 \(--method toy\)"),
                        ({"width": 6}, "--width must be a multiple of 4"),
                        ({"rate": 1.0}, "--rate must be less than 1"), ({"rate": float("nan")}, "finite"),
                        ({"mode": "c"}, "--mode 'c' is not one of a, b"), ({"flag": 1}, "true or false"),
                        ({"width": True}, "must be an integer"), ({"width": 2.5}, "must be an integer"),
                        ({"depth": 3}, r"--depth does not apply to --method toy \(it takes: --width, --rate"),
                        ({}, r"--method toy needs --bits \(Bits\)")]:
        with pytest.raises(ConfigError, match=needle):
            Toy(**{"bits": 16, **bad} if bad else {})


def test_get_set_params_and_signature():
    t = Toy(bits=16, width=12)
    assert t.get_params() == {"width": 12, "rate": 0.5, "mode": "a", "flag": False, "bits": 16}
    assert t.set_params(mode="b") is t and t.mode == "b" and t.width == 12
    with pytest.raises(ConfigError):
        t.set_params(width=-4)
    assert list(inspect.signature(Toy).parameters) == ["width", "rate", "mode", "flag", "bits"]
    assert repr(Toy(bits=16, rate=0.25)) == "Toy(rate=0.25, bits=16)"


def test_with_defaults_and_replace_keep_the_declaration():
    base = Toy.params
    other = base.with_defaults(width=16).replace("rate", help="Other rate")
    assert other["width"].default == 16 and other["rate"].help == "Other rate" and other["rate"].lt == 1
    assert base["width"].default == 8 and base["rate"].help == "Rate"
    with pytest.raises(ValueError):
        base.with_defaults(depth=1)
    with pytest.raises(ValueError):
        ParamSet(Param("a", int), Param("a", int))


def test_list_parsers():
    assert positive_floats("0.1, 0.05", "--x", "1,2") == (0.1, 0.05)
    assert positive_ints("1,10,100", "--at") == [1, 10, 100]
    for text in ("", "0.1,-1", "a"):
        with pytest.raises(ConfigError):
            positive_floats(text, "--x", "1,2")
    with pytest.raises(ConfigError, match="positive integers"):
        positive_ints("1,0", "--at")


def test_help_names_owners_and_their_defaults():
    seed_a = Param("seed", int, 0, "Random seed")
    seed_b = Param("seed", int, 5, "Random seed", default_text="5, as faiss")
    bits = Param("bits", int, help="Code length")
    text = compose_help([("pca", seed_a), ("lsh", seed_b), ("itq", seed_a)], single=False)
    assert text == "pca, itq, lsh: Random seed (default: pca, itq: 0; lsh: 5, as faiss)."
    assert compose_help([("x", bits)], single=True) == "Code length."
    assert compose_help([("a", bits), ("b", seed_a)], single=False) == "a: Code length; b: Random seed (default: 0)."


def test_one_option_per_name_and_agreeing_types():
    options = build_options([("a", ParamSet(Param("n", int, 1, "N"))), ("b", ParamSet(Param("n", int, 2, "N")))])
    assert [p.name for p in options] == ["n"]
    with pytest.raises(TypeError, match="different types"):
        build_options([("a", ParamSet(Param("n", int, help="N"))), ("b", ParamSet(Param("n", float, help="N")))])


@pytest.mark.parametrize("stage,owners", [("train", method_options), ("encode", codec_options),
                                          ("search", scanner_options)])
def test_every_declared_option_is_offered_once(stage, owners):
    rc, out, err = run_cli(stage, "--help")
    assert rc == 0, err
    flags = re.findall(r"(?<![\w-])(--[a-z][\w-]*)", out)
    for _, params in owners():
        for p in params:
            assert p.flag in flags, f"{stage} --help does not offer {p.flag}"
    generated = {p.name for _, params in owners() for p in params}
    assert len(generated) == len(build_options(owners()))
