"""The main job on the bundled data: gt -> train -> encode -> search -> eval for each available method.

The bundled dataset (``vecspread/data/debsift-demo.h5``) is a small real cut of debsift200k: 20k
database and 20k learn SIFT descriptors from photographs, 200 queries (see tools/make_demo_data.py).
"""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from vecspread.progress import Progress, as_progress
from vecspread.stages.encode import encode_dataset
from vecspread.stages.evaluate import evaluate
from vecspread.stages.groundtruth import compute_groundtruth
from vecspread.stages.search import search_codes
from vecspread.stages.train import train_model
from vecspread.transforms import METHOD_NAMES

DEMO_DATASET = "debsift-demo.h5"

Config = tuple[str, str, dict[str, Any], "str | None", dict[str, Any]]

#: (label, method, train options, codec (None: the method's own), codec options) at 64 bits per vector
CONFIGS: list[Config] = [
    ("lsh", "lsh", {"bits": 64}, None, {}),
    ("pca-sign", "pca", {"dout": 64}, "sign", {}),
    ("pca-lattice", "pca", {"dout": 24}, "lattice", {"bits": 64}),
    # the benchmark recipe (dint 512, 8 epochs) on the 20k learn sample; benchmarks/RESULTS.md has
    # the full-size runs. On this small sample the catalyzer's gain shows on sign codes (0.39 vs
    # 0.34 for PCA and 0.18 for LSH, 1-recall@10) while lattice codes tie with PCA (0.79).
    ("catalyzer-lattice", "catalyzer", {"dout": 24, "dint": 512, "epochs": 8, "seed": 0}, "lattice", {"bits": 64}),
    ("catalyzer-sign", "catalyzer", {"dout": 64, "dint": 512, "epochs": 8, "seed": 0, "lam": 0.02, "val_codec": "sign"},
     "sign", {}),
]
#: ``demo --full``: the other baselines, and the catalyzer at the paper's width and 4x the epochs
FULL_CONFIGS: list[Config] = [
    *CONFIGS[:3],
    ("itq", "itq", {"bits": 64}, None, {}),
    ("pq", "pq", {"bits": 64}, None, {}),
    ("opq", "opq", {"bits": 64}, None, {}),
    ("catalyzer-lattice", "catalyzer", {"dout": 24, "dint": 1024, "epochs": 32, "seed": 0}, "lattice", {"bits": 64}),
    ("catalyzer-sign", "catalyzer", {"dout": 64, "dint": 1024, "epochs": 32, "seed": 0, "lam": 0.02,
                                     "val_codec": "sign"}, "sign", {}),
]
#: wall time on 2 cores of a quiet machine (benchmarks/RESULTS.md, "The demo"), said before the run starts
EXPECTED_SECONDS = {"quick": 60, "full": 405}


def demo_dataset_path() -> Path:
    """Path of the bundled dataset inside the installed package."""
    return Path(str(resources.files("vecspread") / "data" / DEMO_DATASET))


def run_demo(workdir: str | None = None, progress: Progress | None = None, full: bool = False) -> list[dict[str, Any]]:
    """Run every available configuration (``full``: :data:`FULL_CONFIGS`); returns one row per method
    with recalls and timings."""
    progress = as_progress(progress)
    configs = FULL_CONFIGS if full else CONFIGS
    seconds = EXPECTED_SECONDS["full" if full else "quick"]
    progress.log(f"demo: {len(configs)} methods at 64 bits on 20k real SIFT vectors; about "
                 f"{_duration(seconds)} on 2 cores" + ("" if full else f" (--full: about {_duration(EXPECTED_SECONDS['full'])})"))
    with tempfile.TemporaryDirectory(prefix="vecspread-demo-") as tmp:
        work = Path(workdir or tmp)
        data = str(demo_dataset_path())
        gt = str(work / "demo.gt.h5")
        progress.log(f"dataset {data}")
        compute_groundtruth(data, gt, 100, progress=progress)
        rows = []
        for label, method, options, codec, codec_options in configs:
            if method not in METHOD_NAMES:
                continue
            progress.log(f"[{label}] train {method} {options}")
            model = str(work / f"{label}.model.h5")
            codes = str(work / f"{label}.codes.h5")
            results = str(work / f"{label}.res.h5")
            trained = train_model(data, model, method, options, progress=progress)
            encoded = encode_dataset(model, data, codes, codec, codec_options, progress=progress)
            searched = search_codes(codes, data, results, 100, progress=progress)
            report = evaluate(results, gt, [1, 10, 100])
            rows.append({"method": label, "codec": encoded["codec"], "bits": encoded["bits"], "recall": report["recall"],
                         "train_seconds": trained["train_seconds"], "encode_seconds": encoded["encode_seconds"],
                         "ms_per_query": searched["ms_per_query"]})
            progress.log(f"[{label}] 1-recall@10 = {report['recall']['10']:.3f}")
        return rows


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} minutes"
