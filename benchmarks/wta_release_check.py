"""Post hoc, for a catalyzer trained with --wta-sparsity: is the catalyzer + --wta-sparsity loss the sparsity itself or its release at inference?
For a trained model: (A) as stored (released, batch norm re-estimated dense), (B) released with batch-norm
statistics of sparse training batches (what no re-estimation would leave), (C) a per-unit threshold at
inference: each sparse unit keeps activations above its (100 - k)% quantile over the training vectors
(the same share as in training, without a batch), batch norm re-estimated in that regime.

    python benchmarks/wta_release_check.py MODEL [--data ../shared/data/debsift200k.h5]

Prints one JSON line: plain 1-recall@1/10/100 (the true nearest id among the first k) of each variant on
the test queries and the database, one thread.
"""
import argparse
import json

import h5py
import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)
import vecspread
from vecspread.neural.sparsity import LifetimeSparsity

class Threshold(nn.Module):
    def __init__(self, tau): super().__init__(); self.register_buffer("tau", tau)
    def forward(self, h): return h * (h > self.tau)

def recall(t, codec, xb, xq, nn1):
    idx = vecspread.Index(t, codec); idx.add(xb); _, I = idx.search(xq, k=100)
    return {k: round(float(np.mean((I[:, :k] == nn1[:, None]).any(1))), 4) for k in (1, 10, 100)}

@torch.no_grad()
def bn_stats(net, xs, batch, sparse_on):
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    for bn in bns: bn.reset_running_stats(); bn.momentum = None
    net.train()
    for s in net.modules():
        if isinstance(s, LifetimeSparsity): s.released = not sparse_on
    perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(0))
    for i in range(0, len(xs) - batch + 1, batch): net(xs[perm[i:i + batch]])
    for bn in bns: bn.momentum = 0.1
    for s in net.modules():
        if isinstance(s, LifetimeSparsity): s.released = False
    net.eval()

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("model")
ap.add_argument("--data", default="../shared/data/debsift200k.h5")
args = ap.parse_args()
model = args.model
with h5py.File(args.data) as f:
    xb, xq, xt = f['train'][:].astype('float32'), f['test'][:].astype('float32'), f['learn'][:].astype('float32')
    nn1 = f['neighbors'][:, 0]
index = vecspread.load(model); t, codec = index.transform, index.codec
xs = torch.from_numpy(xt * np.float32(t.input_scale_))
out = {"model": model, "A_released_recalibrated": recall(t, codec, xb, xq, nn1)}
state = {k: v.clone() for k, v in t.net_.state_dict().items()}
bn_stats(t.net_, xs, 192, sparse_on=True)
out["B_released_sparse_stats"] = recall(t, codec, xb, xq, nn1)
t.net_.load_state_dict(state)
# C: thresholds layer by layer (earlier layers already thresholded), batch norm re-estimated each time
seq = t.net_.net
k = next(m.sparsity for m in seq if isinstance(m, LifetimeSparsity))
for i, m in enumerate(list(seq)):
    if isinstance(m, LifetimeSparsity):
        with torch.no_grad():
            seq[i] = nn.Identity()
            bn_stats(t.net_, xs, 4096, sparse_on=False)
            h = seq[:i](xs)
            tau = torch.quantile(h[torch.randperm(len(h), generator=torch.Generator().manual_seed(1))[:20000]], 1 - k / 100, dim=0)
            seq[i] = Threshold(tau)
bn_stats(t.net_, xs, 4096, sparse_on=False)
out["C_threshold_at_inference"] = recall(t, codec, xb, xq, nn1)
print(json.dumps(out), flush=True)
