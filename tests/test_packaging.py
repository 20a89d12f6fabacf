"""setup.cfg lists every subpackage: a non-editable install copies only the packages it
names, so a folder missing from the list would silently be absent from a wheel."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_PACKAGES = ("model", "simulator", "hwconfigs", "analysis")


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def _listed(option: str) -> list[str]:
    return [line.strip() for line in _setup_cfg()["options"][option].splitlines()
            if line.strip()]


def test_every_folder_with_an_init_is_a_listed_package():
    on_disk = {
        "sparsespikformer." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_PACKAGES for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk == set(_listed("packages"))


def test_each_top_folder_maps_into_the_one_namespace():
    mapping = dict(line.split(" = ") for line in _listed("package_dir"))
    assert mapping == {f"sparsespikformer.{top}": top for top in TOP_PACKAGES}


@pytest.mark.parametrize("package", ["hwconfigs", "simulator", "analysis", "analysis.cli",
                                     "model"])
def test_each_package_imports_first_in_a_fresh_interpreter(package):
    """Import order must not matter: `import sparsespikformer.hwconfigs` on its own once
    failed on a circular import that the test suite's own import order hid."""
    if package == "model":
        pytest.importorskip("torch")
    subprocess.run([sys.executable, "-c", f"import sparsespikformer.{package}"], check=True)
