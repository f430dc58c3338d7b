"""NPhash (Idelson 2020): an MLP to relaxed sign bits trained with a KL loss over random proxies.
Its hyper-parameters; the choices the paper leaves open were set by measurement (see the transform)."""

from vecspread.neural import NEURAL_PARAMS, WTA_SPARSITY
from vecspread.limits import MAX_BATCH, MAX_DIM, MAX_K
from vecspread.params import Param, ParamSet
from vecspread.registry import Spec

#: input-space temperature (cosines are divided by it); set by measurement, see the module docstring
TAU_IN = 0.03
#: output-space temperature (relaxed Hamming similarities are divided by it)
TAU_OUT = 0.03

PARAMS = ParamSet(
    Param("bits", int, 64, "Code length", ge=1, le=MAX_DIM, multiple_of=8),
    *NEURAL_PARAMS.with_defaults(epochs=10, batch_size=256, lr=1e-3)
    .replace("batch_size", help="Queries per step", ge=1, le=MAX_BATCH)
    .replace("lr", help="Learning rate (adam: 1e-3)")
    .replace("val_size", default_text="min(10000, n/10),min(1000, n/100)"),
    WTA_SPARSITY,
    Param("beta", float, help="Slope of the relaxed sign tanh(beta u/|u|)", gt=0, default_text="sqrt(bits)"),
    Param("k", int, 100, "True nearest proxies per query in the KL loss", ge=1, le=MAX_K),
    Param("proxies", int, 10000, "Training vectors drawn at random as reference points for every batch", ge=1,
          le=MAX_BATCH),
    Param("tau_in", float, TAU_IN, "Temperature of the input cosine softmax", gt=0),
    Param("tau_out", float, TAU_OUT, "Temperature of the relaxed Hamming softmax", gt=0),
    Param("kl", str, "pq", "pq: KL(p||q), the paper's; qp: KL(q||p)", choices=("pq", "qp")),
    Param("optimizer", str, "adam", "adam or sgd (with --momentum)", choices=("adam", "sgd")),
    Param("embedding_bn", bool, False, "Batch norm after the embedding layer, kept at inference (code = sign of "
          "BN(u)): the paper's \"all layers following the last BN are omitted\"; measured in benchmarks/RESULTS.md",
          negatable=True),
    panel="NPhash options",
)

SPEC = Spec("nphash", "vecspread.transforms.nphash.transform:NPHashTransform", PARAMS,
            "MLP + relaxed sign trained with a KL loss over random proxies (NPhash, Idelson 2020)",
            codec="sign", run_settings=("device", "checkpoint", "resume", "max_minutes"))
