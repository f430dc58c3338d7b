"""Terminal output for the CLI: one-line errors, log lines and progress bars on stderr, tables on stdout.

Progress bars are drawn only when stderr is a terminal and --quiet is not set; in pipes and CI logs
only plain lines appear. rich is imported lazily so that starting the program stays fast.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any, Iterator


class Console:
    def __init__(self) -> None:
        self.quiet = False
        self.verbose = False

    def configure(self, *, quiet: bool, verbose: bool) -> None:
        self.quiet = quiet and not verbose
        self.verbose = verbose

    # -- stderr ------------------------------------------------------------------------------

    def error(self, message: str) -> None:
        """One line on stderr, always shown (even with --quiet)."""
        line = " ".join(message.split()).encode("utf-8", errors="backslashreplace").decode("utf-8")  # names from files
        sys.stderr.write(f"vecspread: error: {line}\n")
        sys.stderr.flush()

    def log(self, message: str) -> None:
        if not self.quiet:
            sys.stderr.write(message.rstrip("\n") + "\n")
            sys.stderr.flush()

    @contextlib.contextmanager
    def progress(self) -> Iterator["StageProgress"]:
        bar = sys.stderr.isatty() and not self.quiet
        p = StageProgress(self, bar)
        try:
            yield p
        finally:
            p.close()

    # -- stdout ------------------------------------------------------------------------------

    def summary(self, title: str, values: dict[str, Any], stdout: bool = False) -> None:
        """A short key/value block: on stdout for reports (atoms), on stderr for stage summaries."""
        if self.quiet and not stdout:
            return
        stream = sys.stdout if stdout else sys.stderr
        width = max(len(k) for k in values) if values else 0
        stream.write(f"{title}:\n")
        for key, value in values.items():
            stream.write(f"  {key:<{width}}  {_fmt(value)}\n")
        stream.flush()

    def recall_table(self, report: dict[str, Any]) -> None:
        from rich.console import Console as RichConsole
        from rich.table import Table

        table = Table(title=f"recall over {report['nq']} queries ({report.get('codec') or '?'} codes)")
        table.add_column("k", justify="right")
        table.add_column("1-recall@k", justify="right")
        table.add_column("k-recall@k", justify="right")
        for k, v in report["recall"].items():
            kr = report["k_recall"].get(k)
            table.add_row(k, f"{v:.4f}", "" if kr is None else f"{kr:.4f}")
        RichConsole(file=sys.stdout, width=100).print(table)
        cs = report.get("class_search")
        if cs is not None:
            rel = cs["relative_accuracy"]
            print(f"class search: exact softmax accuracy {cs['accuracy']:.4f} ({cs['right']} of {report['nq']} right); "
                  f"relative accuracy of the index "
                  + ("n/a (the model is right on no query)" if rel is None else f"{rel:.4f}"), file=sys.stdout)

    def demo_table(self, rows: list[dict[str, Any]]) -> None:
        from rich.console import Console as RichConsole
        from rich.table import Table

        table = Table(title="vecspread demo: 1-recall@k on the bundled SIFT sample")
        for col in ("method", "codec", "bits", "R@1", "R@10", "R@100", "train s", "encode s", "ms/query"):
            table.add_column(col, justify="left" if col in ("method", "codec") else "right")
        for r in rows:
            table.add_row(r["method"], r["codec"], str(r["bits"]), f"{r['recall']['1']:.3f}",
                          f"{r['recall']['10']:.3f}", f"{r['recall']['100']:.3f}", f"{r['train_seconds']:.1f}",
                          f"{r['encode_seconds']:.2f}", f"{r['ms_per_query']:.3f}")
        RichConsole(file=sys.stdout, width=120).print(table)


#: without a terminal, a long unit of work says where it stands at least this often (seconds)
HEARTBEAT_SECONDS = 30.0


class StageProgress:
    """The library's Progress protocol, drawn as a rich bar on a terminal; elsewhere (a log file, CI) log
    lines, plus one line at least every ``HEARTBEAT_SECONDS`` of a long unit of work."""

    def __init__(self, console: Console, bar: bool):
        self.console = console
        self._bar = None
        self._task = None
        self._work: list[Any] | None = None  # [description, total, done, started, last line]
        if bar:
            from rich.console import Console as RichConsole
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=RichConsole(file=sys.stderr), transient=True)
            self._bar.start()

    def log(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            self.console.log(message)

    def start(self, total: int, description: str) -> None:
        now = time.monotonic()
        self._work = [description, max(int(total), 1), 0, now, now]
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)
        elif self._work is not None:
            self._work[2] += n
            now = time.monotonic()
            if now - self._work[4] >= HEARTBEAT_SECONDS:
                description, total, done, started, _ = self._work
                self.console.log(f"{description}: {done}/{total} ({100 * done / total:.0f}%) after {now - started:.0f} s")
                self._work[4] = now

    def finish(self) -> None:
        self._work = None
        if self._bar is not None and self._task is not None:
            self._bar.remove_task(self._task)
            self._task = None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)
