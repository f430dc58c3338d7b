"""The program in a shell: completion scripts generated from the app (and TAB completion that imports
nothing heavy), man pages that show every option, `-` streaming through pipes, --json / --quiet /
stderr conventions on every reporting stage, and the README's Makefile example."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, SCRIPTS_DIR, assert_one_line_error, cli_command, cli_env, run_cli, run_cli_with
from vecspread.codecs import CODEC_NAMES
from vecspread.io.formats import write_vectors
from vecspread.transforms import METHOD_NAMES

ONE_THREAD = cli_env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
#: what tools/gen_docs.py runs the program with (help2man and the completion scripts)
DOCS_ENV = cli_env(TYPER_USE_RICH="0", COLUMNS="80", LC_ALL="C.UTF-8", TERM="dumb", NO_COLOR="1")
HEAVY = ("torch", "faiss", "h5py", "numpy")


def run(*args: object, env: dict | None = None, stdin: str | None = None) -> tuple[int, str, str]:
    return run_cli_with(*args, env=env or ONE_THREAD, stdin=stdin)


def stage_names() -> list[str]:
    import typer.main

    from vecspread.cli import app

    return list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


# ============================================================================================
# completions


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_are_in_sync_with_the_app(shell):
    rc, script, err = run(env={**DOCS_ENV, "_VECSPREAD_COMPLETE": f"source_{shell}"})
    assert rc == 0, err
    committed = (REPO_ROOT / "completions" / f"vecspread.{shell}").read_text()
    assert script == committed, f"completions/vecspread.{shell} is out of date: run `make completions`"


def complete_bash(words: str, cword: int) -> list[str]:
    rc, out, err = run(env={**DOCS_ENV, "_VECSPREAD_COMPLETE": "complete_bash", "COMP_WORDS": words,
                            "COMP_CWORD": str(cword)})
    assert rc == 0, err
    return out.splitlines()


@pytest.mark.parametrize("words, cword, expected", [
    ("vecspread tr", 1, {"train"}),
    ("vecspread ", 1, {"import", "gt", "train", "encode", "search", "eval", "atoms", "inspect", "verify", "demo", "tune"}),
    ("vecspread train x --me", 3, {"--method"}),
    ("vecspread encode m.h5 d.h5 --bl", 4, {"--block-size"}),
    ("vecspread train x --method ", 4, set(METHOD_NAMES)),
    ("vecspread encode m.h5 d.h5 --codec ", 5, set(CODEC_NAMES)),
    ("vecspread import b.fvecs --distance ", 4, {"euclidean", "angular", "dot"}),
])
def test_bash_completion_protocol(words, cword, expected):
    got = set(complete_bash(words, cword))
    assert expected <= got, (words, got)


def test_bash_completion_function_fills_compreply(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    if not (SCRIPTS_DIR / "vecspread").is_file():
        pytest.skip(f"no vecspread console script in {SCRIPTS_DIR}")
    script = f"""
source {REPO_ROOT / 'completions' / 'vecspread.bash'}
complete -p vecspread >/dev/null || exit 7
ask() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=()
        _vecspread_completion vecspread; echo "${{COMPREPLY[*]}}"; }}
ask vecspread tr
ask vecspread train x --me
ask vecspread train x --method ''
"""
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True,
                          env=DOCS_ENV, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    subcommands, options, methods = proc.stdout.splitlines()
    assert subcommands.split() == ["train"]
    assert "--method" in options.split()
    assert set(methods.split()) == set(METHOD_NAMES)


def test_cli_module_imports_nothing_heavy():
    code = f"import sys, vecspread.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=DOCS_ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"importing vecspread.cli loads {proc.stdout.strip()}"


def test_tab_completion_imports_nothing_heavy(record_property):
    """A completion request runs the whole program: measure it, and list what it imported."""
    env = {**DOCS_ENV, "_VECSPREAD_COMPLETE": "complete_bash", "COMP_WORDS": "vecspread train x --method ",
           "COMP_CWORD": "4"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "vecspread"], capture_output=True, text=True,
                          env=env, timeout=60)
    seconds = time.perf_counter() - t0
    record_property("completion_seconds", round(seconds, 3))
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) == set(METHOD_NAMES)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert not imported & set(HEAVY), f"completion imported {sorted(imported & set(HEAVY))} in {seconds:.2f} s"


# ============================================================================================
# man pages


def _unroff(text: str) -> str:
    """Roff source -> plain text, enough to find option names: font escapes out, '\\-' -> '-'."""
    text = re.sub(r"\\f(\[[^\]]*\]|.)", "", text)
    return text.replace("\\-", "-").replace("\\,", "").replace("\\/", "").replace("\\&", "")


def _help_options(help_text: str) -> list[str]:
    """Every option name in the Options: section(s) of a plain (TYPER_USE_RICH=0) --help."""
    options, in_options = [], False
    for line in help_text.splitlines():
        if re.match(r"^\S.*:$", line):
            in_options = line.startswith("Options")
            continue
        m = re.match(r"^  (-[\w-]+(?:(?:, | / )-[\w-]+)*)", line) if in_options else None
        if m:  # "-o, --output <str>", "--plot / --no-plot"
            options += re.split(r", | / ", m.group(1))
    return options


@pytest.fixture(scope="module")
def help_texts() -> dict[str, str]:
    stages = [None, *stage_names()]

    def helptext(stage):
        rc, out, err = run(*([stage] if stage else []), "--help", env=DOCS_ENV)
        assert rc == 0, err
        return out

    with ThreadPoolExecutor(3) as pool:
        return dict(zip(stages, pool.map(helptext, stages)))


@pytest.mark.parametrize("stage", [None, *stage_names()])
def test_man_page_lists_every_option(help_texts, stage):
    options = _help_options(help_texts[stage])
    assert "--help" in options, help_texts[stage]
    page = REPO_ROOT / "man" / (f"vecspread-{stage}.1" if stage else "vecspread.1")
    assert page.is_file(), f"{page} is missing: run `make man`"
    text = _unroff(page.read_text())
    missing = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text)]
    assert not missing, f"{page.name} lacks {missing}: run `make man`"


def test_every_subcommand_has_a_man_page():
    pages = {p.name for p in (REPO_ROOT / "man").glob("*.1")}
    assert pages == {"vecspread.1", *(f"vecspread-{s}.1" for s in stage_names())}


def test_generated_docs_are_up_to_date():
    if shutil.which("help2man") is None:
        pytest.skip("help2man is not installed (Debian: apt-get install help2man)")
    proc = subprocess.run([sys.executable, "tools/gen_docs.py", "check"], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=cli_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_makefile_regenerates_docs():
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target, what in (("man", "gen_docs.py man"), ("completions", "gen_docs.py completions")):
        m = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M)
        assert m and what in m.group(1), f"Makefile target {target} should run {what}"
    assert re.search(r"^docs:.*\bman\b.*\bcompletions\b", makefile, re.M)


# ============================================================================================
# '-' streams HDF5 through pipes


def test_encode_to_stdout_piped_into_search(pipeline, tmp_path):
    p = pipeline
    res = tmp_path / "res.h5"
    cmd = (f"vecspread encode {p.rot32} {p.data.h5} -c sign -o - "
           f"| vecspread search - {p.data.h5} -k 100 -o {res}")
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, cwd=tmp_path,
                          env=ONE_THREAD, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(tmp_path) == ["res.h5"]
    with ThreadPoolExecutor(2) as pool:
        streamed, direct = pool.map(lambda r: run("eval", r, p.gt, "--json"), [res, p.sign_results])
    assert streamed[0] == 0 and direct[0] == 0, (streamed[2], direct[2])
    a, b = json.loads(streamed[1]), json.loads(direct[1])
    assert a["recall"] == b["recall"] and a["k_recall"] == b["k_recall"]


def test_stdout_output_with_json_is_refused(pipeline, tmp_path):
    rc, out, err = run("search", pipeline.sign_codes, pipeline.data.h5, "-k", 5, "-o", "-", "--json")
    assert "--json" in assert_one_line_error(rc, err)
    assert out == ""


def test_stdin_input_that_is_empty_is_refused(pipeline, tmp_path):
    res = tmp_path / "res.h5"
    rc, out, err = run("search", "-", pipeline.data.h5, "-k", 5, "-o", res, stdin="")
    assert "standard input is empty" in assert_one_line_error(rc, err)
    assert out == "" and os.listdir(tmp_path) == []


def test_dataset_read_from_stdin(pipeline, tmp_path):
    gt = tmp_path / "gt.h5"
    with open(pipeline.data.h5, "rb") as f:
        proc = subprocess.run(cli_command("gt", "-", "-k", 10, "-o", gt), stdin=f, capture_output=True, env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr
    import h5py

    with h5py.File(gt, "r") as g, h5py.File(pipeline.gt, "r") as ref:
        np.testing.assert_array_equal(g["neighbors"][()], ref["neighbors"][:, :10])


# ============================================================================================
# --json, --quiet, stderr for logs, no progress bars without a terminal

WRITING = ["import", "gt", "train", "encode", "search"]
REPORTING = [*WRITING, "eval", "inspect", "atoms", "verify", "bench"]  # demo is too slow for the suite


def stage_args(stage: str, p, out: Path) -> tuple:
    return {
        "import": ("import", p.data.base, "--queries", p.data.queries, "-o", out),
        "gt": ("gt", p.data.h5, "-k", 10, "-o", out),
        "train": ("train", p.data.h5, "-m", "rotation", "--dout", 16, "-o", out),
        "encode": ("encode", p.rot32, p.data.h5, "-c", "sign", "-o", out),
        "search": ("search", p.sign_codes, p.data.h5, "-k", 10, "-o", out),
        "eval": ("eval", p.sign_results, p.gt, "--at", "1,10"),
        "inspect": ("inspect", p.rot32, p.data.h5, "--nq", 5, "--sample", 200, "-k", 10, "--radii", 4),
        "atoms": ("atoms", "--dim", 8, "--bits", 16),
        "verify": ("verify", p.data.h5, p.rot32, p.sign_codes, p.sign_results, p.gt),
        "bench": ("bench", p.data.h5, "-o", out.with_suffix(""), "--quick", "--methods", "lsh", "--bits", 16,
                  "--no-plot"),
    }[stage]


@pytest.fixture(scope="module")
def stage_runs(pipeline, tmp_path_factory) -> dict:
    """Each reporting stage with --json, with -q, and (writing stages) plainly. stdout and stderr are files,
    not terminals, captured at the file descriptor level (C libraries' output included)."""
    d = tmp_path_factory.mktemp("stage-runs")
    jobs = {}
    for stage in REPORTING:
        jobs[stage, "json"] = (*stage_args(stage, pipeline, d / f"{stage}-json.h5"), "--json")
        jobs[stage, "quiet"] = ("-q", *stage_args(stage, pipeline, d / f"{stage}-quiet.h5"))
        if stage in WRITING:
            jobs[stage, "plain"] = stage_args(stage, pipeline, d / f"{stage}-plain.h5")
    return {key: run_cli(*args) for key, args in jobs.items()}


def assert_no_terminal_controls(stderr: str) -> None:
    assert "\x1b" not in stderr and "\r" not in stderr, f"progress-bar control characters on stderr: {stderr!r}"


@pytest.mark.parametrize("stage", REPORTING)
def test_json_is_one_object_on_stdout(stage_runs, stage):
    rc, out, err = stage_runs[stage, "json"]
    assert rc == 0, err
    assert len(out.splitlines()) == 1, out
    assert isinstance(json.loads(out), dict)
    assert_no_terminal_controls(err)


@pytest.mark.parametrize("stage", REPORTING)
def test_quiet_success_leaves_stderr_empty(stage_runs, stage):
    rc, out, err = stage_runs[stage, "quiet"]
    assert rc == 0, err
    assert err == ""
    if stage in WRITING:
        assert out == ""


@pytest.mark.parametrize("stage", WRITING)
def test_logs_go_to_stderr_without_progress_bars(stage_runs, stage):
    rc, out, err = stage_runs[stage, "plain"]
    assert rc == 0, err
    assert out == "", f"a writing stage printed on stdout: {out!r}"
    assert err.strip(), "the summary / log lines belong on stderr"
    assert_no_terminal_controls(err)


# ============================================================================================
# the README's Makefile example


def readme_makefile() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## A Makefile that rebuilds only what changed", 1)[1]
    m = re.search(r"```make\n(.*?)```", section, re.S)
    assert m, "no ```make block under 'A Makefile that rebuilds only what changed'"
    return m.group(1)


BUILD_STAGES = ("import", "gt", "train", "encode", "search")


def make(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], capture_output=True, text=True, cwd=directory, env=ONE_THREAD, timeout=300)


def planned(directory: Path) -> list[str]:
    """The vecspread stages `make -n` would run."""
    proc = make(directory, "-n")
    assert proc.returncode == 0, proc.stderr
    return [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("vecspread ")]


def age_everything(directory: Path, seconds: float = 1000) -> None:
    """Move every file's mtime back (keeping their order), so that a later touch is clearly newer."""
    for f in directory.iterdir():
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """The README's Makefile, run once on small fvecs named as in the example."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    d = tmp_path_factory.mktemp("readme-make")
    (d / "Makefile").write_text(readme_makefile())
    rng = np.random.default_rng(0)
    xb = rng.integers(0, 100, (2000, 32)).astype(np.float32)
    xq = xb[:50] + rng.integers(-1, 2, (50, 32)).astype(np.float32)  # near-duplicates: recall@10 is high
    write_vectors(str(d / "siftsmall_base.fvecs"), xb)
    write_vectors(str(d / "siftsmall_query.fvecs"), xq)
    proc = make(d)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("vecspread ")]
    assert sorted(ran) == sorted([*BUILD_STAGES, "eval"]) and ran[-1] == "eval"  # each stage once, the check last
    age_everything(d)
    return d


def copy_of(made: Path, tmp_path: Path) -> Path:
    d = tmp_path / "work"
    shutil.copytree(made, d)  # copy2: mtimes kept
    return d


def test_readme_makefile_builds_and_then_is_up_to_date(made, tmp_path):
    d = copy_of(made, tmp_path)
    assert make(d, "-q", "pca24.res.h5", "sift.gt.h5").returncode == 0, "make -q: targets are not up to date"
    assert planned(d) == ["eval"], "a second `make` should only re-run the eval check of `all`"


def test_readme_makefile_rebuilds_downstream_of_changed_queries(made, tmp_path):
    d = copy_of(made, tmp_path)
    (d / "siftsmall_query.fvecs").touch()
    assert sorted(s for s in planned(d) if s != "eval") == sorted(BUILD_STAGES)
    proc = make(d)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert planned(d) == ["eval"]


def test_readme_makefile_keeps_model_and_codes(made):
    """make deletes files made by chained pattern rules ("intermediate" files) unless told not to."""
    kept = sorted(p.name for p in made.glob("pca24.*.h5"))
    assert kept == ["pca24.codes.h5", "pca24.model.h5", "pca24.res.h5"], (
        f"after `make`: {kept}; GNU make removed the model and codes as intermediate files "
        "(the README's Makefile needs `.SECONDARY:` or `.NOTINTERMEDIATE:`)"
    )


def test_readme_makefile_new_ground_truth_reruns_only_search(made, tmp_path):
    """A new ground truth changes nothing upstream of the search: train and encode must not re-run."""
    d = copy_of(made, tmp_path)
    (d / "sift.gt.h5").touch()
    stages = [s for s in planned(d) if s != "eval"]
    assert "train" not in stages and "encode" not in stages, f"touching sift.gt.h5 re-runs {stages}"
