"""What `pip install .` (the Docker image) installs: every data file a package reads is named by a
package-data glob of pyproject.toml — a scenario example left out made `qrisk schema export` fail there."""
from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import PurePosixPath

from tests.conftest import ROOT


def _matches(rel: str, pattern: str) -> bool:
    parts, wanted = PurePosixPath(rel).parts, PurePosixPath(pattern).parts
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def test_every_data_file_of_a_package_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    data = config["package-data"]
    tracked = subprocess.run(["git", "ls-files", *(p.replace(".", "/") for p in config["packages"])], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    missing = []
    for path in tracked:
        if path.endswith(".py"):
            continue
        package, _, rel = path.partition("/")
        if not any(_matches(rel, glob) for glob in data.get(package, [])):
            missing.append(path)
    assert not missing, f"not installed by `pip install .` (add to [tool.setuptools.package-data]): {missing}"


def test_the_check_would_see_a_file_left_out():
    assert _matches("examples/scenarios/retest.json", "examples/scenarios/*.json")
    assert not _matches("examples/scenarios/retest.json", "examples/*.json")
