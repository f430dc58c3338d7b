"""Exit 1 when the environment holds a CUDA package (nvidia-*, *cuda*, triton): the CPU build of torch
is what vecspread installs (see tools/install_torch.sh); a CUDA one is gigabytes nobody asked for."""

from __future__ import annotations

import re
import sys
from importlib import metadata

CUDA_PACKAGE = re.compile(r"^(nvidia[-_].*|.*cuda.*|triton)$", re.IGNORECASE)


def cuda_packages() -> list[str]:
    """Installed distributions whose names say CUDA, sorted."""
    names = {(d.metadata.get("Name") or "") for d in metadata.distributions()}
    return sorted(n for n in names if n and CUDA_PACKAGE.match(n))


def main() -> int:
    found = cuda_packages()
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "not installed"
    if found:
        print(f"CUDA packages installed ({', '.join(found)}): torch {torch} is the CUDA build; reinstall it "
              "from https://download.pytorch.org/whl/cpu (tools/install_torch.sh)", file=sys.stderr)
        return 1
    print(f"no CUDA packages (torch {torch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
