#!/bin/sh
# Install the CPU build of torch into the environment of PYTHON.
#
# From PyTorch's CPU-only wheel index when it is reachable (on PyPI, a plain `pip install torch` is the
# CUDA build: ~2.7 GB of nvidia/triton packages); otherwise from pip's configured index (mirrors that
# serve a CPU build, as on the project's build machines). Then refuses an environment holding any
# CUDA package (tools/check_no_cuda.py), so a CUDA build is never installed silently.
#
# usage: tools/install_torch.sh PYTHON TORCH_REQUIREMENT     (e.g. .venv/bin/python torch==2.13.0)
# env:   TORCH_CPU_INDEX (default https://download.pytorch.org/whl/cpu)
set -eu
PY=$1
TORCH=$2
INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
if "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=10)" "$INDEX" 2>/dev/null \
        && "$PY" -m pip install -q --index-url "$INDEX" "$TORCH"; then
    echo "torch: the CPU build from $INDEX"
else
    echo "torch: not from $INDEX (unreachable, or no $TORCH there); from pip's configured index"
    "$PY" -m pip install -q "$TORCH"
fi
"$PY" "$(dirname "$0")/check_no_cuda.py"
