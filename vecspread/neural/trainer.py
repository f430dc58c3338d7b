"""The epoch loop every neural method shares: split, network, steps, validation, the kept epoch, checkpoints.

A method (``vecspread.transforms.neural.NeuralTransform``) supplies its network and an :class:`Objective`
(optimizer, the data it prepares once, the plan of each epoch, the loss of one step, the codecs it is
validated with); :func:`train` does the rest, the same way for every method:

- **Split**: ``numpy.random.default_rng(seed).permutation(n)``; its first ``nq`` ids are the validation
  queries, the next ``ndb`` the validation database (none: the queries are searched in the training
  vectors), the rest train. Nothing held out is ever trained on.
- **Input scale**: inputs are divided by the mean l2 norm of the training vectors, so the first layer
  sees norms ~1 whatever the data; the factor is stored with the model.
- **Randomness**: the network's initialisation and every draw of the objective (positives, batch order,
  proxies) come from one ``torch.Generator`` seeded with ``seed``. With a fixed number of threads a CPU
  run is reproducible bit for bit.
- **Validation** every ``val_every`` epochs, after the last one and at a budget stop: the 1-recall@1/10/100
  of the sign bits (and of the method's other validation codecs) of the held-out queries against their
  exact nearest neighbour, tie-aware. The kept model is the latest epoch within one standard error of the
  best (:func:`vecspread.neural.validation.kept_epoch`); without validation, the last one.
- **Budget** (``RunSettings.max_minutes``): after the first epoch (mining, steps, validation), the
  number of epochs that fit the time left at that epoch's cost is the run's length, and the
  learning-rate schedule is spread over it (:meth:`Objective.lr_at`), so that a budget gives a complete
  schedule, decays included, in fewer epochs; the log says so. Before each later epoch the plan is
  checked against the mean cost of the recent epochs (the last 6, rounded up to a multiple of
  ``val_every``): when they grew slower (validation, another job on the machine), the run is shortened
  so that the rest of the schedule, decays included, still fits; when they grew faster (the first epoch
  was slowed), it is lengthened up to ``epochs``, never undoing a decay already taken; the log says so.
  Should even that be too long, training stops at the step that reaches the budget (possibly
  mid-epoch); that point is validated and checkpointed.
- **Lifetime sparsity** (a network with ``vecspread.neural.sparsity`` layers): after every epoch's steps
  its batch-norm running statistics are re-estimated on the training vectors with the sparsity released,
  as inference runs it (``recalibrate_batch_norm``; nothing happens for a network without such layers).
- **Checkpoints** at every validation point (``vecspread.neural.checkpoint``): a run resumed from one
  continues bit for bit, mid-epoch included, and refuses a checkpoint written with other
  hyper-parameters or other training data.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from vecspread.errors import ConfigError, InputError
from vecspread.neural.checkpoint import check_compatible, read_checkpoint, write_checkpoint
from vecspread.neural.mlp import init_mlp
from vecspread.neural.sparsity import recalibrate_batch_norm
from vecspread.neural.torch_util import (error_reason, fingerprint, forward_batched, load_optimizer_arrays, load_state_arrays,
                                         optimizer_arrays, resolve_device, state_arrays)
from vecspread.neural.validation import RECALL_KS, Validator, kept_epoch, recall_stderr, split_sizes
from vecspread.progress import Progress
from vecspread.runtime import RunSettings

#: steps between progress advances
ADVANCE_EVERY = 8


class Objective:
    """What makes a neural method what it is, for one run on ``ntr`` training vectors.

    ``epochs_planned`` is the run's length as the trainer plans it, set before each epoch begins (a time
    budget may make it less than the epochs asked for).
    """

    epochs_planned: int = 0

    #: the validation codec whose 1-recall@10 picks the kept epoch
    kept_codec: str = "sign"
    #: the validation record's entry that picks the kept epoch (None: ``<kept_codec>_r10``), and its
    #: name in the log (None: "<kept_codec> 1-recall@10") and on the progress bar
    kept_key: str | None = None
    kept_label: str | None = None
    kept_short: str = "1-R@10"

    def describe(self) -> str:
        """The hyper-parameters that matter, for the first log line of a run."""
        return ""

    def make_validator(self, xq: np.ndarray, query_ids: np.ndarray) -> Any:
        """The validation of a method that is not judged by nearest-neighbour recall: an object with
        ``nq`` and ``run(forward) -> dict`` (holding :attr:`kept_key`), for the held-out (nq, d_in) float32
        queries ``xq`` (scaled as the network sees them), rows ``query_ids`` of the training set given to
        ``fit``. None (the default): the trainer's :class:`~vecspread.neural.validation.Validator`."""
        return None

    def validation_codecs(self) -> dict[str, Any]:
        """Codecs validated besides the sign bits: label -> factory of an unfitted codec."""
        return {}

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        raise NotImplementedError

    def n_steps(self, ntr: int) -> int:
        """Steps per epoch."""
        raise NotImplementedError

    def lr_at(self, epoch: int, epochs: int | None = None) -> float | None:
        """The learning rate of 0-based ``epoch`` of a run of ``epochs`` (None: the optimizer's own)."""
        return None

    def init_network(self, net: nn.Module, xs: np.ndarray) -> None:
        """Weights drawn from the data, after the random init and before the first step of a run that does
        not resume (a resumed one restores them): ``xs``, the (ntr, d_in) float32 training vectors as the
        network sees them. Default: nothing."""

    def prepare(self, x_train: np.ndarray, xs: np.ndarray, device: torch.device) -> str:
        """Data fixed for the whole run, from the (ntr, d_in) float32 training vectors as given and as the
        network sees them (scaled); returns a note for the log (what it computed)."""
        return ""

    def begin_epoch(self, epoch: int, net: nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """The plan of one epoch (batch order, sampled pairs...): CPU tensors, checkpointed mid-epoch."""
        raise NotImplementedError

    def step(self, net: nn.Module, plan: dict[str, torch.Tensor], b: int,
             gen: torch.Generator) -> tuple[torch.Tensor, int, dict[str, float]]:
        """The loss of step ``b`` (with gradient), the number of training vectors it used, and statistics
        (averaged over those vectors in the epoch's record; names starting with ``t_`` are seconds, summed)."""
        raise NotImplementedError

    def finish_epoch(self, net: nn.Module) -> None:
        """After an epoch's steps (also a partial one) and the trainer's re-estimation of batch-norm
        statistics with lifetime sparsity released, ``net`` in eval mode, before validation: what else the
        network needs at inference and the steps do not give it (the WTA autoencoder's centre). Its time
        counts as the steps'. Default: nothing."""


class AdamBatches(Objective):
    """An objective that steps through the training vectors in mini-batches of the method's
    ``batch_size`` with Adam at its ``lr`` (constant): the WTA autoencoder's and the softmax's. It keeps
    the method as ``t`` and the scaled training vectors, on the device, as ``xs``."""

    t: Any

    def optimizer(self, net: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(net.parameters(), lr=float(self.t.lr))

    def n_steps(self, ntr: int) -> int:
        return -(-ntr // int(self.t.batch_size))

    def prepare(self, x_train: np.ndarray, xs: np.ndarray, device: torch.device) -> str:
        self.device = device
        self.xs = torch.from_numpy(xs).to(device)
        return ""

    def batch(self, plan: dict[str, torch.Tensor], b: int) -> torch.Tensor:
        """The training-vector ids of step ``b`` (``plan["order"]``, a permutation), on the device."""
        bs = int(self.t.batch_size)
        return plan["order"][b * bs : (b + 1) * bs].to(self.device)


def train(method: Any, xt: np.ndarray, run: RunSettings, report: Progress) -> None:
    """Train ``method`` (a ``NeuralTransform``) on (n, d_in) float32 ``xt``; sets its fitted state."""
    t_start = time.perf_counter()
    deadline = None if run.max_minutes is None else t_start + 60.0 * float(run.max_minutes)
    n, d_in = xt.shape
    device = resolve_device(run.device)

    ndb, nq = split_sizes(method.val_size, n, method.default_validation)
    perm = np.random.default_rng(method.seed).permutation(n)
    val_q, val_db = np.sort(perm[:nq]), np.sort(perm[nq : nq + ndb])
    train_ids = np.sort(perm[nq + ndb :])
    x_train = xt[train_ids]
    ntr = len(x_train)
    method._device = device  # the objective may choose by it (the catalyzer mines on a GPU)
    method.split_ = {"train": train_ids, "queries": val_q, "database": val_db}  # rows of xt, for labels
    objective = method.objective(ntr, nq, report)
    mean_norm = float(np.linalg.norm(x_train, axis=1).astype(np.float64).mean())
    if not math.isfinite(mean_norm) or mean_norm <= 0:
        raise InputError("training vectors have a zero or non-finite mean norm")
    scale = 1.0 / mean_norm

    gen = torch.Generator().manual_seed(int(method.seed))
    net = method.build_network(d_in)
    init_mlp(net, gen)
    net.to(device)
    opt = objective.optimizer(net)
    method.d_in_, method.d_out_ = d_in, int(net.d_out)
    method.input_scale_, method.net_, method._device = scale, net, device

    nb = objective.n_steps(ntr)
    key = objective.kept_key or f"{objective.kept_codec}_r10"
    run_key = {**method.get_params(), **method.resolved(), "data": fingerprint(xt),
               **({"labels": fingerprint(method.labels_[:, None])} if getattr(method, "labels_", None) is not None else {})}
    state = _RunState()
    if run.resume:
        state.load(run.resume, method.name, run_key, net, opt, gen, device, method.epochs, nb)
        where = f"epoch {state.epoch + 1} step {state.step}/{nb}" if state.step else f"epoch {state.epoch}"
        report.log(f"resumed from {run.resume} after {where}")

    xs = np.ascontiguousarray(x_train * np.float32(scale), dtype=np.float32)
    if not run.resume:
        objective.init_network(net, xs)
    t0 = time.perf_counter()
    note = objective.prepare(x_train, xs, device)
    method.prepare_seconds_ = time.perf_counter() - t0
    validator = None
    if nq > 0:
        validator = objective.make_validator(xt[val_q] * np.float32(scale), val_q)
    if nq > 0 and validator is None:
        xdb = xt[val_db] if ndb > 0 else x_train  # ndb 0: the queries are searched in the training set
        validator = Validator(xdb * np.float32(scale), xt[val_q] * np.float32(scale), objective.validation_codecs())
    split = f"{ndb} + {nq} queries" if ndb else f"{nq} queries in the training set" if nq else "none"
    report.log(f"{method.name}: {ntr} training vectors (d={d_in}), validation {split}, {objective.describe()}, "
               f"{method.epochs} epochs on {device}" + (f"; {note} in {time.perf_counter() - t0:.1f}s" if note else ""))

    def forward(x: np.ndarray) -> np.ndarray:
        return forward_batched(net, x, method.d_out_, device)

    stopped = False
    planned = state.planned or int(method.epochs)
    epoch = state.epoch
    first_epoch_seconds = None
    epoch_seconds: list[float] = []  # this process's complete epochs, for re-planning a budget
    # recent epochs for re-planning: a multiple of val_every, so that each window holds as many validations
    window = int(method.val_every) * -(-REPLAN_WINDOW // int(method.val_every))
    while epoch < planned:
        if first_epoch_seconds is not None and state.planned is None:
            planned = state.planned = _epochs_in_budget(planned, first_epoch_seconds, deadline, report, method.name)
            if epoch >= planned:
                break
        elif deadline is not None and state.planned is not None and len(epoch_seconds) >= window:
            last_lr = state.history[-1]["lr"] if state.history else None
            planned = state.planned = _replan(planned, epoch, epoch_seconds[-window:], deadline, report, method.name,
                                              int(method.epochs), lambda p: objective.lr_at(epoch, p), last_lr)
        lr = objective.lr_at(epoch, planned)
        t_epoch = time.perf_counter()
        if lr is not None:
            for group in opt.param_groups:
                group["lr"] = lr
        t0 = time.perf_counter()
        objective.epochs_planned = planned
        if state.plan is None:
            state.plan, state.sums = objective.begin_epoch(epoch, net, gen), {}
        t_mining = time.perf_counter() - t0
        t0 = time.perf_counter()
        net.train()
        report.start(nb, _bar_text(method, epoch, planned, state.history, key, objective.kept_short))
        report.advance(state.step)
        pending = 0
        b = state.step
        while b < nb and not stopped:
            loss, rows, stats = objective.step(net, state.plan, b, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.item()
            if not math.isfinite(value):
                raise ConfigError(f"{method.name} training diverged at epoch {epoch + 1} "
                                  f"(lr {opt.param_groups[0]['lr']:g}): lower --lr")
            state.add(rows, {"loss": value, **stats})
            b += 1
            pending += 1
            if pending == ADVANCE_EVERY or b == nb:
                report.advance(pending)
                pending = 0
            stopped = deadline is not None and time.perf_counter() > deadline
        report.advance(pending)
        report.finish()
        net.eval()
        # a network trained with lifetime sparsity runs without it: its batch norms re-estimated so (else a no-op)
        recalibrate_batch_norm(net, xs, device)
        objective.finish_epoch(net)
        partial = b < nb
        rec: dict[str, Any] = {"epoch": epoch + 1, "steps": b, "partial": partial,
                               "lr": opt.param_groups[0]["lr"], **state.record(),
                               "t_mining": state.sums.get("t_mining", 0.0) + t_mining,
                               "t_train": state.sums.get("t_train", 0.0) + time.perf_counter() - t0}

        at_check = (epoch + 1) % method.val_every == 0 or epoch + 1 == planned or stopped
        t0 = time.perf_counter()
        mark = ""
        if at_check and validator is not None:
            rec.update(validator.run(forward))
            state.best_score = max(state.best_score, rec[key])
            scores = [(r["epoch"], r[key]) for r in [*state.history, rec] if key in r]
            if kept_epoch(scores, validator.nq) == epoch + 1:
                state.best_epoch, mark = epoch + 1, " *"
                state.best = state_arrays(net)
        rec["t_val"] = time.perf_counter() - t0
        state.history.append(rec)
        if partial:  # the time already spent in this epoch, for the record of a resumed run
            state.sums["t_mining"], state.sums["t_train"] = rec["t_mining"], rec["t_train"]
        # on disk before the epoch is reported: whatever interrupts the run later can resume from here
        if at_check and run.checkpoint:
            state.save(run.checkpoint, method.name, run_key, net, opt, gen, epoch, b if partial else 0)
        report.log(_format_epoch(rec, planned) + mark)
        state.next_epoch()
        if stopped:
            report.log(f"time budget of {run.max_minutes:g} min reached at epoch {epoch + 1} step {b}/{nb}")
            break
        if deadline is not None and not partial:
            epoch_seconds.append(time.perf_counter() - t_epoch)  # mining, steps, validation, checkpoint
            if epoch == 0:
                first_epoch_seconds = epoch_seconds[0]
        epoch += 1
    if deadline is not None and not stopped and state.history:
        report.log(f"{method.name}: completed its schedule of {planned} epochs within {run.max_minutes:g} min")
    method.epochs_run_ = planned

    if state.best is not None:
        load_state_arrays(net, state.best)
        net.to(device)
    else:
        state.best_epoch = state.history[-1]["epoch"] if state.history else None
    net.eval()
    # the record of the model (what it reached) and of the run (where the time went) kept apart: the
    # first defines the model and is part of its fingerprint, the second is provenance
    method.history_ = [{k: v for k, v in r.items() if not k.startswith("t_")} for r in state.history]
    method.timings_ = [{k: v for k, v in r.items() if k in ("epoch", "steps") or k.startswith("t_")}
                       for r in state.history]
    method.best_epoch_ = state.best_epoch
    if validator is not None and state.best_epoch is not None:
        kept = next(r[key] for r in state.history if r["epoch"] == state.best_epoch and key in r)
        label = objective.kept_label or f"{objective.kept_codec} 1-recall@10"
        line = f"kept the model of epoch {state.best_epoch} ({label} {kept:.4f}"
        if kept < state.best_score:
            top = next(r["epoch"] for r in state.history if r.get(key) == state.best_score)
            line += (f"; the best, {state.best_score:.4f} at epoch {top}, is within one standard error "
                     f"({recall_stderr(state.best_score, validator.nq):.4f})")
        report.log(line + ")")


def _epochs_in_budget(planned: int, seconds: float, deadline: float, report: Progress, name: str) -> int:
    """Epochs the run keeps after its first took ``seconds``: as many as the time left before ``deadline``
    fits at that cost (at least 1, at most ``planned``); logged either way."""
    left = deadline - time.perf_counter()
    fit = max(1, min(planned, 1 + int(left // max(seconds, 1e-9))))
    if fit < planned:
        report.log(f"{name}: an epoch takes {seconds:.0f} s, so the budget fits {fit} of the {planned} epochs: "
                   f"the learning-rate schedule is spread over {fit} epochs, decays included")
    else:
        report.log(f"{name}: an epoch takes {seconds:.0f} s: the budget fits all {planned} epochs")
    return fit


#: fewest complete epochs whose mean cost re-plans a budget (rounded up to a multiple of val_every)
REPLAN_WINDOW = 6
#: a re-planned epoch is assumed this much slower than the recent mean, so that the last one still ends in time
REPLAN_MARGIN = 1.1
#: a budget's run grows again only when at least this factor more epochs fit (the first epoch was slow)
REPLAN_GROW = 1.05


def _replan(planned: int, epoch: int, seconds: list[float], deadline: float, report: Progress, name: str,
            most: int, lr_of: Callable[[int], float | None], last_lr: float | None) -> int:
    """The run's length before 0-based ``epoch`` starts, re-planned from the mean cost of the recent epochs
    ``seconds``: the epochs done plus as many as the time left fits (with ``REPLAN_MARGIN``).

    Shorter when epochs grew slower (the learning-rate decays move earlier, so the schedule still ends
    inside the budget); longer, up to ``most`` (the epochs asked for), when they grew faster by at least
    ``REPLAN_GROW`` -- but only as far as the next epoch's rate, ``lr_of(length)``, stays at or below
    ``last_lr``: a decay already taken is never undone. Logged when it changes."""
    recent = sum(seconds) / len(seconds)
    left = deadline - time.perf_counter()
    fit = max(epoch + 1, min(most, epoch + int(left // max(REPLAN_MARGIN * recent, 1e-9))))
    new = planned
    if fit < planned:
        new = fit
    elif fit >= planned * REPLAN_GROW and fit > planned:
        new = next((p for p in range(fit, planned, -1) if _not_above(lr_of(p), last_lr)), planned)
    if new != planned:
        report.log(f"{name}: epochs now take {recent:.0f} s, so the budget fits {new} epochs instead of {planned}: "
                   f"the rest of the learning-rate schedule is spread over them")
    return new


def _not_above(lr: float | None, last: float | None) -> bool:
    return lr is None or last is None or lr <= last * (1 + 1e-9)


def _bar_text(method: Any, epoch: int, planned: int, history: list[dict[str, Any]], key: str,
              short: str = "1-R@10") -> str:
    """The training bar's label: the epoch, and the last epoch's loss and validation 1-recall@10."""
    text = f"{method.name} epoch {epoch + 1}/{planned}"
    if history:
        last = history[-1]
        text += f" | loss {last.get('loss', float('nan')):.4g}"
        scored = [r for r in history if key in r]
        if scored:
            text += f" | val {short} {scored[-1][key]:.3f}"
    return text


class _RunState:
    """Where a run stands: epochs done, the current epoch's plan, step and sums, history, the kept model.
    Exactly what a checkpoint holds."""

    def __init__(self) -> None:
        self.epoch, self.step = 0, 0
        self.planned: int | None = None  # the run's length once a time budget has set it
        self.plan: dict[str, torch.Tensor] | None = None
        self.sums: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, np.ndarray] | None = None
        self.best_score, self.best_epoch = -math.inf, None

    def add(self, rows: int, stats: dict[str, float]) -> None:
        s = self.sums
        s["rows"] = s.get("rows", 0) + rows
        s["steps"] = s.get("steps", 0) + 1
        for name, value in stats.items():
            s[name] = s.get(name, 0.0) + (value if name.startswith("t_") else rows * value)

    def record(self) -> dict[str, float]:
        rows = max(1, self.sums.get("rows", 0))
        return {k: (v if k.startswith("t_") else v / rows) for k, v in self.sums.items()
                if k not in ("rows", "steps", "t_mining", "t_train")}

    def next_epoch(self) -> None:
        self.epoch += 1
        self.step, self.plan, self.sums = 0, None, {}

    def save(self, path: str, kind: str, run_key: dict[str, Any], net: nn.Module, opt: torch.optim.Optimizer,
             gen: torch.Generator, epoch: int, step: int) -> None:
        meta = {"kind": kind, "run_key": run_key, "epoch": epoch + 1 if not step else epoch, "step": step,
                "sums": self.sums if step else None, "history": self.history,
                "best_score": self.best_score, "best_epoch": self.best_epoch, "planned": self.planned}
        groups: dict[str, dict[str, np.ndarray]] = {
            "model": state_arrays(net), "optimizer": optimizer_arrays(opt),
            "rng": {"torch": gen.get_state().numpy()}, "best": self.best or {},
        }
        if step:
            groups["epoch"] = {k: v.cpu().numpy() for k, v in (self.plan or {}).items()}
        write_checkpoint(path, meta, groups)

    def load(self, path: str, kind: str, run_key: dict[str, Any], net: nn.Module, opt: torch.optim.Optimizer,
             gen: torch.Generator, device: torch.device, epochs: int, steps: int) -> None:
        """Restore a checkpoint; InputError naming what is wrong with a damaged or crafted one."""
        meta, groups = read_checkpoint(path, kind)
        check_compatible(meta.get("run_key", {}), run_key, path)
        try:
            epoch, step = int(meta["epoch"]), int(meta["step"])
            if not (0 <= epoch <= epochs and 0 <= step < steps and (step == 0 or epoch < epochs)):
                raise ValueError(f"epoch {epoch} step {step} outside 0..{epochs} epochs of {steps} steps")
            rng = np.array(groups["rng"]["torch"], dtype=np.uint8)
            if rng.shape != tuple(gen.get_state().shape):
                raise ValueError(f"generator state of {rng.size} bytes, expected {gen.get_state().numel()}")
            load_state_arrays(net, groups["model"])
            net.to(device)
            load_optimizer_arrays(opt, groups.get("optimizer", {}))
            gen.set_state(torch.from_numpy(rng))
            self.history = [dict(r) for r in meta["history"]]
            self.best_score, self.best_epoch = float(meta["best_score"]), meta["best_epoch"]
            planned = meta.get("planned")
            self.planned = None if planned is None else int(planned)
            if self.planned is not None and not 1 <= self.planned <= epochs:
                raise ValueError(f"a planned {self.planned} epochs outside 1..{epochs}")
            self.best = groups.get("best") or None
            if self.best is not None:
                expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
                if {k: tuple(np.shape(v)) for k, v in self.best.items()} != expected:
                    raise ValueError("the kept model's weights do not match the network")
            if step:
                self.plan = {k: torch.from_numpy(np.array(v)) for k, v in groups["epoch"].items()}
                self.sums = {k: float(v) for k, v in dict(meta["sums"]).items()}
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            raise InputError(f"cannot resume from {path}: {error_reason(e)} (checkpoint damaged?)") from None
        self.epoch, self.step = epoch, step


def _format_epoch(rec: dict[str, Any], epochs: int) -> str:
    partial = f" (partial, {rec['steps']} steps)" if rec["partial"] else ""
    stats = " ".join(f"{k} {v:.4g}" for k, v in rec.items()
                     if k not in ("epoch", "steps", "partial", "lr") and not k.startswith("t_") and "_r" not in k)
    s = (f"epoch {rec['epoch']}/{epochs}{partial} lr {rec['lr']:g} {stats} | mining {rec['t_mining']:.1f}s "
         f"train {rec['t_train']:.1f}s val {rec['t_val']:.1f}s")
    for codec in sorted({k.rsplit("_r", 1)[0] for k in rec if k.endswith("_r10")}, key=lambda c: c != "sign"):
        s += f" | {codec} 1-R@1/10/100 " + "/".join(f"{rec[f'{codec}_r{k}']:.3f}" for k in RECALL_KS)
    return s

