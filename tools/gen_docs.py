"""Regenerate man/ (help2man) and completions/ from the CLI itself, so they never drift from it.

    python tools/gen_docs.py man           # man/vecspread.1 and man/vecspread-<stage>.1
    python tools/gen_docs.py completions   # completions/vecspread.{bash,zsh,fish}
    python tools/gen_docs.py check         # exit 1 if either differs from what is committed

help2man runs with TYPER_USE_RICH=0 COLUMNS=80 (plain, stable help text) and a fixed
SOURCE_DATE_EPOCH so that the pages only change when the CLI does.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from vecspread import __version__

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["import", "gt", "train", "encode", "search", "eval", "inspect", "bench", "tune", "atoms", "verify", "demo"]
SHELLS = ["bash", "zsh", "fish"]
#: pages carry this date (2026-11-22) rather than the day they were regenerated
SOURCE_DATE_EPOCH = "1795305600"


def env() -> dict[str, str]:
    e = dict(os.environ, TYPER_USE_RICH="0", COLUMNS="80", SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH,
             LC_ALL="C.UTF-8", TERM="dumb", NO_COLOR="1")
    e.pop("FORCE_COLOR", None)
    return e


def vecspread_cmd() -> list[str]:
    return [sys.executable, "-m", "vecspread"]


def generate_man(outdir: Path) -> None:
    if shutil.which("help2man") is None:
        sys.exit("help2man is not installed (Debian: apt-get install help2man)")
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for stage in [None, *STAGES]:
            name = "vecspread" if stage is None else f"vecspread-{stage}"
            wrapper = Path(tmp) / name
            args = " ".join(vecspread_cmd()) + ("" if stage is None else f" {stage}")
            # help2man runs a program's --help; a subcommand gets a wrapper script and its own name
            wrapper.write_text(f'#!/bin/sh\nexec {args} "$@"\n')
            wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
            description = _first_help_line(stage)
            page = outdir / f"{name}.1"
            subprocess.run(
                ["help2man", "--no-info", "--no-discard-stderr", "-n", description,
                 "--version-string", f"{name} {__version__}", "-o", str(page), str(wrapper)],
                check=True, env=env(),
            )
            page.write_text(rehyphenate(page.read_text()))


def rehyphenate(page: str) -> str:
    """help2man joins a word the help text wrapped at its hyphen ("simple-" / "lsh" -> "simplelsh"):
    put the hyphen back in every registered name that has one."""
    import re

    from vecspread.codecs import REGISTRY as CODECS
    from vecspread.scanners import REGISTRY as SCANNERS
    from vecspread.transforms import REGISTRY as METHODS

    for name in {*METHODS.names, *CODECS.names, *SCANNERS.names}:
        if "-" in name:
            page = re.sub(rf"\b{re.escape(name.replace('-', ''))}\b", name.replace("-", "\\-"), page)
    return page


def _first_help_line(stage: str | None) -> str:
    if stage is None:
        return "learned spreading transforms and compact codes for similarity search"
    from vecspread.cli import app
    import typer.main

    group = typer.main.get_command(app)
    cmd = group.commands[stage]  # type: ignore[attr-defined]
    return (cmd.help or stage).strip().splitlines()[0].rstrip(".")


def generate_completions(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for shell in SHELLS:
        out = subprocess.run(vecspread_cmd(), env={**env(), "_VECSPREAD_COMPLETE": f"source_{shell}"},
                             check=True, capture_output=True, text=True).stdout
        (outdir / f"vecspread.{shell}").write_text(out)


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        generate_man(Path(tmp) / "man")
        generate_completions(Path(tmp) / "completions")
        stale = []
        for sub in ("man", "completions"):
            fresh = {p.name: p.read_text() for p in (Path(tmp) / sub).iterdir()}
            committed = {p.name: p.read_text() for p in (ROOT / sub).iterdir()} if (ROOT / sub).is_dir() else {}
            stale += [f"{sub}/{n}" for n in sorted(set(fresh) | set(committed)) if fresh.get(n) != committed.get(n)]
    if stale:
        print("out of date (run `make docs`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what in ("man", "all"):
        generate_man(ROOT / "man")
    if what in ("completions", "all"):
        generate_completions(ROOT / "completions")
    if what == "check":
        sys.exit(check())


if __name__ == "__main__":
    main()
