"""Shared by every test folder: this folder is on sys.path (pytest puts a conftest's
folder there), so tests import helpers such as `damaged_files` from it.

Without torch (the CI step that checks the simulator and the sweeps need only numpy, pandas,
pyyaml and matplotlib), the test files that train, prune or record a model are not collected;
tests elsewhere that need torch skip with `requires_torch`.
"""

from __future__ import annotations

import importlib.util

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch (the model side)")

if not HAS_TORCH:
    collect_ignore_glob = [
        "model/*",
        "analysis/test_cli_checkpoints.py",
        "analysis/test_cli_event_data.py",
        "analysis/test_cli_prune.py",
        "analysis/test_cli_train.py",
        "analysis/test_cli_trace.py",
        "analysis/test_demo.py",
    ]
