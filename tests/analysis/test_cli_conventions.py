"""The command line as a Unix tool: exit codes (0 done, 1 a bug, 2 bad input), tracebacks for
bugs only (and for input errors under -v), a closed pipe ends quietly, --version, -o -."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sparsespikformer.analysis.cli import is_input_error, main
from sparsespikformer.simulator.errors import (
    CheckpointError,
    DataError,
    HwConfigError,
    InputError,
    SweepSpecError,
    TraceError,
)
from sparsespikformer.simulator.synthetic import synthetic_trace


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


_PATCHED_LIST = ("import sys\nimport sparsespikformer.analysis.cli as cli\n"
                 "import sparsespikformer.analysis.cli.commands.list as cmd\n"
                 "def boom(args):\n    raise {error}\n"
                 "cmd.run = boom\nsys.exit(cli.main({argv}))\n")


def test_a_bug_keeps_its_traceback_and_exits_1():
    # A ValueError raised inside numpy or torch is a bug, not bad input.
    done = _run_python(_PATCHED_LIST.format(error="ValueError('operands could not be "
                                                  "broadcast')", argv="['list']"))
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "operands could not be broadcast" in done.stderr


def test_an_os_error_not_about_a_path_is_a_bug():
    done = _run_python(_PATCHED_LIST.format(error="ConnectionResetError('peer gone')",
                                            argv="['list']"))
    assert done.returncode == 1 and "Traceback" in done.stderr


@pytest.mark.parametrize("verbose, traceback_shown", [(False, False), (True, True)])
def test_input_error_is_one_line_exit_2_and_v_shows_its_traceback(verbose, traceback_shown):
    argv = "['-v', 'list']" if verbose else "['list']"
    done = _run_python(_PATCHED_LIST.format(
        error="__import__('sparsespikformer.simulator.errors', fromlist=['x'])"
              ".TraceError('t/layers.csv: column rate: not a number')", argv=argv))
    assert done.returncode == 2
    assert "sparsespikformer list: error: t/layers.csv: column rate: not a number" in done.stderr
    assert ("Traceback" in done.stderr) is traceback_shown
    if not verbose:
        assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("error, expected", [
    (InputError("x"), True), (TraceError("x"), True), (HwConfigError("x"), True),
    (SweepSpecError("x"), True), (CheckpointError("x"), True), (DataError("x"), True),
    (FileNotFoundError("x: not found"), True), (PermissionError(13, "denied", "x"), True),
    (OSError(16, "busy", "some/dir"), True),
    (ValueError("inside numpy"), False), (TypeError("x"), False),
    (OSError("no filename"), False), (BrokenPipeError(32, "Broken pipe"), False),
])
def test_which_errors_count_as_bad_input(error, expected):
    assert is_input_error(error) is expected


def test_missing_file_message_names_the_path_not_errno(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nope") in err and "[Errno" not in err


def test_closed_pipe_ends_quietly_with_exit_0():
    # The reader is gone before the writer prints anything: every write hits a closed pipe.
    proc = subprocess.Popen([sys.executable, "-m", "sparsespikformer.analysis.cli", "list"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert stderr == ""


def test_version_prints_the_installed_version():
    from importlib.metadata import version
    done = subprocess.run([sys.executable, "-m", "sparsespikformer.analysis.cli", "--version"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert done.stdout.strip() == f"sparsespikformer {version('sparsespikformer')}"


def test_simulate_dash_o_dash_writes_standard_output(tmp_path, capsys, monkeypatch):
    trace_dir = tmp_path / "t"
    synthetic_trace(_tiny_shapes(), firing_rate=0.2, weight_density=0.5).save(trace_dir)
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", str(trace_dir), "--format", "json", "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert '"totals"' in out and not (tmp_path / "-").exists()


def _tiny_shapes():
    from sweep_fakes import tiny_layer_shapes
    return tiny_layer_shapes()


# ----------------------------------------------------------------------------- the rest of the kind


@pytest.mark.parametrize("command", ["demo", "train", "eval", "prune", "trace", "simulate",
                                     "sweep", "plot", "report", "list"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: sparsespikformer {command} ")


@pytest.mark.parametrize("argv", [
    ["demo", "--out", "-"],
    ["train", "--out", "-"],
    ["prune", "--out", "-"],
    ["trace", "--synthetic", "--preset", "spikformer_4_64_digits", "--out", "-"],
    ["sweep", "pe_memory_sweep", "--out", "-"],
])
def test_a_folder_output_refuses_standard_output_in_one_line(argv, capsys, tmp_path,
                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "argument --out: '-' means standard output, which cannot hold a folder" in err
    assert not (tmp_path / "-").exists()


def _sweep_folder(tmp_path):
    from sweep_fakes import FAKE, write_spec

    from sparsespikformer.analysis.sweeps.run import run_sweep

    run_sweep(write_spec(tmp_path), tmp_path / "sw", workers=1, progress=False, evaluator=FAKE)
    return tmp_path / "sw"


def test_plot_and_report_write_standard_output(tmp_path, capsysbinary, monkeypatch):
    folder = _sweep_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = ["plot", "pareto", "--input", str(folder), "--y", "latency_s", "--out", "-"]
    assert main([*argv, "--format", "png"]) == 0
    assert capsysbinary.readouterr().out[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([*argv, "--format", "pdf"]) == 0
    assert capsysbinary.readouterr().out[:5] == b"%PDF-"
    assert main(["report", str(folder), "--out", "-"]) == 0
    page = capsysbinary.readouterr().out.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert not (tmp_path / "-").exists() and not (folder / "report.html").exists()


def test_plot_to_standard_output_needs_one_format(tmp_path, capsys):
    folder = _sweep_folder(tmp_path)
    assert main(["plot", "pareto", "--input", str(folder), "--y", "latency_s",
                 "--out", "-"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give one --format" in err


def test_report_into_a_closed_pipe_ends_quietly(tmp_path):
    folder = _sweep_folder(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "sparsespikformer.analysis.cli", "report",
                             str(folder), "--out", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and stderr == ""


class _Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, no_progress, shown", [
    (True, False, True), (False, False, False), (True, True, False)])
def test_progress_bars_only_on_a_terminal(monkeypatch, tty, no_progress, shown):
    import argparse

    from sparsespikformer.analysis.cli.arg_groups import progress_wanted

    monkeypatch.setattr(sys, "stderr", _Stream(tty))
    assert progress_wanted(argparse.Namespace(no_progress=no_progress)) is shown
