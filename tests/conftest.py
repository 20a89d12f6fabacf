"""Shared by every test folder: this folder is on sys.path (pytest puts a conftest's
folder there), so tests import helpers such as `damaged_files` from it.

Without torch (the CI step that checks the simulator and the sweeps need only numpy, pandas,
pyyaml and matplotlib), the test files that import torch or the model side are not collected;
tests elsewhere that need torch skip with `requires_torch`.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch (the model side)")


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (`pytestmark = pytest.mark.usefixtures(
    "one_torch_thread")`): on a shared 2-core machine a second spinning thread only waits."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A test module needs torch when it imports torch or the model side at its top level.
_NEEDS_TORCH = re.compile(r"^(?:import torch|from torch|from sparsespikformer\.model\b"
                          r"|import sparsespikformer\.model\b)", re.MULTILINE)


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Without torch, skip collecting the model tests and every test module that imports
    torch or the model at its top level (a list of names would miss the next new file)."""
    if HAS_TORCH or collection_path.suffix != ".py" or not collection_path.name.startswith(
            "test_"):
        return None
    if "model" in collection_path.relative_to(Path(__file__).parent).parts[:1]:
        return True
    return bool(_NEEDS_TORCH.search(collection_path.read_text(encoding="utf-8"))) or None
