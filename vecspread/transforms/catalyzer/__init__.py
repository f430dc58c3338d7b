"""The catalyzer (Sablayrolles et al., ICLR 2019): an MLP onto the unit sphere trained with the triplet
rank loss plus the KoLeo entropy regulariser. Its hyper-parameters; the paper's defaults unless noted."""

import dataclasses

from vecspread.codecs.lattice import BLOCKS, PRODUCT_MAX_BITS, R2_MAX
from vecspread.limits import MAX_DIM, MAX_K
from vecspread.neural import NEURAL_PARAMS, WTA_SPARSITY
from vecspread.params import Param, ParamSet, positive_floats
from vecspread.registry import Spec


def lr_schedule(value: object) -> tuple[float, ...]:
    """Piecewise-constant learning rates, from "0.1,0.1,0.05,0.01" or a sequence of positive numbers."""
    if isinstance(value, str):
        return positive_floats(value, "--lr-schedule", "0.1,0.1,0.05,0.01")
    try:
        values = tuple(float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        values = ()
    if not values or any(not v > 0 for v in values):
        from vecspread.errors import ConfigError

        raise ConfigError(f"--lr-schedule {value!r}: expected a non-empty list of positive learning rates")
    return values


#: training vectors from which ``mining="auto"`` searches with IVF: there exact mining costs more than the
#: SGD steps (99k SIFT vectors: 12.7 s against 8.5 s per epoch on one thread, benchmarks/RESULTS.md)
AUTO_IVF_MIN = 50_000

#: Appendix A, Table 3 of the paper: best lam per dout (Deep1M, r = 10)
LAMBDA_BY_DOUT = {16: 0.05, 24: 0.02, 32: 0.01, 40: 0.005}

PARAMS = ParamSet(
    Param("dout", int, 24, "Output dimension", ge=1, le=MAX_DIM),
    *NEURAL_PARAMS.with_defaults(epochs=8, batch_size=64, lr=0.1)
    .replace("epochs", default_text="8; the paper: 160")
    .replace("batch_size", help="Triplets per SGD step")
    .replace("lr", help="Learning rate; rescales --lr-schedule")
    .replace("val_size", default_text="0,min(1000, n/100)"),
    WTA_SPARSITY,
    Param("bn_order", str, "bn-relu", "Order in each hidden block", choices=("bn-relu", "relu-bn")),
    Param("lam", float, help="KoLeo weight", ge=0, default_text="per dout, paper App. A: " + ", ".join(
        f"{d}: {v:g}" for d, v in LAMBDA_BY_DOUT.items())),
    Param("kpos", int, 10, "Positives drawn among the kpos input-space neighbours", ge=1, le=MAX_K),
    Param("kneg", int, 50, "Negative = kneg-th neighbour in the output space", ge=1, le=MAX_K),
    Param("self_positive", bool, False, "Count each vector among its own positives: draw from itself and its "
          "kpos-1 nearest others, as a k-NN of the learn set in itself does (off: the kpos nearest others)",
          negatable=True),
    Param("bn_stats", str, "joint", "Batch-norm statistics per step: joint (one pass over anchors, positives and "
          "negatives together) or per-role (three passes)", choices=("joint", "per-role")),
    Param("lr_schedule", tuple, (0.1, 0.1, 0.05, 0.01), "Comma-separated step values spread evenly over the epochs",
          convert=lr_schedule),
    Param("quantizer_train", str, help="'lattice': end-to-end training through the lattice (straight-through)",
          choices=("none", "lattice"), default_text="off"),
    Param("bits", int, 64, "Lattice budget in bits for validation and end-to-end training (past 64 bits a "
          "product of lattices over blocks of the output)", ge=1, le=PRODUCT_MAX_BITS),
    Param("r2", int, help="Lattice squared radius (instead of --bits)", ge=1, le=R2_MAX),
    dataclasses.replace(BLOCKS, help="Lattice blocks of the output for validation and end-to-end training (default: one up "
                   "to 64 bits, ceil(bits/64) above, as encode --codec lattice cuts them)"),
    Param("block_norm", bool, True, "With a product lattice, normalise each block of the output on its own, "
          "divided by sqrt(blocks), as the codec decodes it (--no-block-norm: the whole output)", negatable=True),
    Param("pca_path", bool, False, "Add a linear path from the input to the output (before the normalisation), "
          "started at the input's PCA projection mixed by a random rotation, with the MLP's output layer at zero: "
          "training starts from PCA + rotation instead of a random map (needs --dout at most the input's "
          "dimension)", negatable=True),
    Param("koleo", str, "whole", "KoLeo over the whole output, or per-block: the mean over the product "
          "lattice's blocks of each block's KoLeo", choices=("whole", "per-block")),
    Param("mining", str, "auto", "Neighbour search for positives and hard negatives: exact (brute force), "
          "ivf (faiss IVF-Flat, 4 sqrt(n) lists: sub-quadratic; its recall against exact is in "
          f"benchmarks/RESULTS.md) or auto (ivf from {AUTO_IVF_MIN:,} training vectors on the CPU, exact below and on a "
          "GPU, where exact searches run with torch)",
          choices=("auto", "exact", "ivf")),
    Param("nprobe", int, 32, "Lists an IVF mining search visits (--mining ivf)", ge=1, le=65536),
    Param("val_codec", str, "lattice", "Codec whose validation 1-recall@10 picks the kept epoch, the latest "
          "within one standard error of the best", choices=("lattice", "sign")),
    panel="Catalyzer options",
)

SPEC = Spec("catalyzer", "vecspread.transforms.catalyzer.transform:CatalyzerTransform", PARAMS,
            "MLP spreading vectors on the sphere (triplet + KoLeo loss, Sablayrolles et al. 2019)",
            run_settings=("device", "checkpoint", "resume", "max_minutes"))
