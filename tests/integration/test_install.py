"""A deployed center installs the runtime dependencies only (`pip install .`, no extras):
the `yiwang` command must start without the test and benchmark tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "dispatch",
    "devices",
    "gis",
    "simulators",
    "harness",
    "bench",
)


def test_yiwang_starts_from_a_plain_install_in_a_clean_venv(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert "yiwang==" in installed and "playwright" not in installed and "pytest" not in installed
    for command in (["--help"], ["serve", "--help"], ["bench", "--help"]):
        result = subprocess.run(
            [str(venv / "bin" / "yiwang"), *command], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, (
            f"yiwang {' '.join(command)}:\n{result.stdout}{result.stderr}"
        )
        assert "usage: yiwang" in result.stdout
