"""The ``inspect`` stage: the diagnostics report of a model or codes artifact, its figures and its JSON file."""

from __future__ import annotations

import json
from typing import Any

from vecspread.diagnostics.report import inspect
from vecspread.errors import ConfigError
from vecspread.io.atomic import write_text


def inspect_artifact(artifact: str, dataset: str, *, figures: str | None = None, output: str | None = None,
                     **options: Any) -> dict[str, Any]:
    """:func:`vecspread.diagnostics.report.inspect` (``options`` are its keyword arguments), then the
    figures drawn into the directory ``figures`` and the whole report written to ``output`` as JSON."""
    if figures:
        from vecspread.diagnostics.plots import require_matplotlib

        require_matplotlib()  # fail before the long work
    report = inspect(artifact, dataset, **options)
    if figures and "class_search" in report:
        raise ConfigError(f"{artifact} is a softmax model: its class-search report has no figures (the "
                          "uniformity and epsilon plots are of nearest-neighbour search); drop --figures")
    if figures:
        from vecspread.diagnostics.plots import write_figures

        report["figures"] = [str(p) for p in write_figures(report, figures)]
    if output:
        write_text(output, json.dumps(report, sort_keys=True, default=str))
    return report
