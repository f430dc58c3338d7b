"""`vecspread bench`: the matrix runs through the real stages and its tables match its cells."""

from __future__ import annotations

import json

import pytest

from conftest import cli_ok, run_cli
from vecspread.stages.bench import make_cell


def test_bench_matrix_tables_and_skips(syn, tmp_path):
    out = tmp_path / "bench"
    cli_ok("-q", "bench", syn.h5, "--bits", "16,64,128", "--methods", "lsh,pca-lattice,pq", "-o", out, "--no-plot")
    report = json.loads((out / "bench.json").read_text())
    cells = {(c["method"], c["bits"]): c for c in report["cells"]}
    assert set(cells) == {(m, b) for m in ("lsh", "pca-lattice", "pq") for b in (16, 64, 128)}
    # 128 bits is a product of two 24-d lattices, which PCA cannot give from 32 dimensions: skipped with the reason
    assert "PCA cannot add dimensions" in cells[("pca-lattice", 128)]["skipped"]
    assert "no lattice dimension chosen for 72 bits" in make_cell("pca-lattice", 72, quick=True)
    assert make_cell("catalyzer-lattice", 128, quick=True).train["dout"] == 48
    # pq at 128 bits on 32 dims is M = 16 sub-quantizers of 2 dims: runs
    for key in [("lsh", 16), ("lsh", 64), ("pca-lattice", 64), ("pq", 64), ("pq", 128)]:
        c = cells[key]
        assert c["code_bits"] == key[1]
        assert 0 <= c["recall"]["1"] <= c["recall"]["10"] <= c["recall"]["100"] <= 1
    # the recall in the table is the one of a separate, real eval of the same results
    res = out / "artifacts" / "pq-64.res.h5"
    ev = json.loads(cli_ok("eval", res, out / "artifacts" / "gt.h5", "--json"))
    assert ev["recall"]["10"] == pytest.approx(cells[("pq", 64)]["recall"]["10"])
    md = (out / "bench.md").read_text()
    assert f"| pq | {cells[('pq', 64)]['recall']['1']:.3f} | {cells[('pq', 64)]['recall']['10']:.3f} |" in md
    assert "1-recall@10 of binary codes versus bits" in md and "| lsh |" in md


def test_bench_reuses_a_model_across_codecs():
    # catalyzer-lattice and a second lattice cell at the same bits share one model
    a, b = make_cell("catalyzer-lattice", 64, quick=True), make_cell("catalyzer-lattice", 64, quick=True)
    assert a.model_key == b.model_key
    assert make_cell("catalyzer-sign", 64, quick=True).model_key != a.model_key


def test_a_budget_gives_the_catalyzer_rows_the_papers_schedule_to_compress():
    for name in ("catalyzer-lattice", "catalyzer-sign", "catalyzer-opq"):
        assert make_cell(name, 64, quick=False).train["epochs"] == 8
        assert make_cell(name, 64, quick=False, budgeted=True).train["epochs"] == 160
    assert make_cell("catalyzer-lattice", 64, quick=True, budgeted=True).train["epochs"] == 1  # --quick wins


def test_product_lattice_cells_rotate_pca_and_start_the_catalyzer_from_it():
    """Past 64 bits (a product of lattice blocks) PCA is rotated and the catalyzer gets --pca-path; up to 64
    bits (one block) both stay as they were; no path where the output is wider than the input."""
    assert make_cell("pca-lattice", 128, quick=True).train == {"dout": 48, "rotate": True}
    assert make_cell("pca-lattice", 64, quick=True).train == {"dout": 24}
    assert make_cell("catalyzer-lattice", 128, quick=True, d=128).train["pca_path"] is True
    assert "pca_path" not in make_cell("catalyzer-lattice", 64, quick=True, d=128).train
    assert "pca_path" not in make_cell("catalyzer-lattice", 512, quick=True, d=128).train  # dout 192 > 128


def test_bench_refuses_unknown_methods(syn, tmp_path):
    rc, _, err = run_cli("bench", syn.h5, "--methods", "lsh,nope", "-o", tmp_path / "b")
    assert rc == 2 and "nope" in err and err.count("\n") == 1


def test_quick_cells_are_marked_and_seeds_give_mean_and_spread(syn, tmp_path):
    """Issue 14: --quick cells are under-trained in every output; --seeds N reports mean ± std; the
    recall-vs-QPS figure is written; faiss's clustering warnings are one log line, not thirty."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench"
    rc, _, err = run_cli("bench", syn.h5, "--quick", "--bits", "16", "--methods", "lsh,pq,catalyzer-sign",
                         "--seeds", "2", "-o", out)
    assert rc == 0, err
    report = json.loads((out / "bench.json").read_text())
    cells = {c["method"]: c for c in report["cells"]}
    assert all("--quick" in c["under_trained"] for c in cells.values())
    assert len(cells["lsh"]["seed_recall10"]) == 2 and "recall_std" in cells["catalyzer-sign"]
    assert "recall_std" not in cells["pq"]  # no seed to vary: run once
    m = cells["lsh"]["seed_recall10"]
    assert cells["lsh"]["recall"]["10"] == pytest.approx(sum(m) / 2)
    md = (out / "bench.md").read_text()
    assert "| lsh † |" in md and " ± " in md and "† under-trained: --quick" in md
    assert (out / "bench.png").is_file() and (out / "bench_qps.png").is_file()
    # pq at 16 bits: two sub-quantizers, two k-means warnings from faiss, summed up in one line
    assert err.count("please provide at least") == 1 and "faiss: 2 messages (2 like: WARNING clustering" in err


def test_a_training_stopped_by_the_budget_is_marked(syn, tmp_path):
    out = tmp_path / "bench"
    cli_ok("-q", "bench", syn.h5, "--bits", "16", "--methods", "catalyzer-sign", "--budget-minutes", "0.0001",
           "--max-train", "500", "-o", out, "--no-plot")
    cell = json.loads((out / "bench.json").read_text())["cells"][0]
    assert "stopped by --budget-minutes after 1 of 160 epochs" in cell["under_trained"], cell  # the paper's schedule


def test_opq_at_a_budget_whose_m_does_not_divide_d_keeps_the_dimensions_that_it_does():
    """96 bits on 128-d SIFT: 12 sub-quantizers; OPQ rotates to 120 dimensions (faiss OPQ12_120)."""
    assert make_cell("opq", 96, quick=False, d=128).train["dout"] == 120
    assert "dout" not in make_cell("opq", 64, quick=False, d=128).train
    assert "dout" not in make_cell("pq", 96, quick=False, d=128).train  # PQ cannot: its cell is refused later
