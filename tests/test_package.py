"""s2s as a package: a wheel built from the checkout, installed into a fresh venv, runs from
another folder with its defaults, recipes and page files from the installed package.

The venv borrows the test environment's dependencies (a ``.pth`` line: nothing downloaded);
s2s itself comes from the wheel, and the checkout is nowhere on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.helpers import ROOT


def run(*args, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=600,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the s2s wheel installed; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("package")
    leftovers = [ROOT / name for name in ("build", "s2s.egg-info") if not (ROOT / name).exists()]
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "-w", tmp / "wheel", ROOT, cwd=tmp,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    for leftover in leftovers:  # setuptools builds inside the checkout: tidy what it added
        shutil.rmtree(leftover, ignore_errors=True)
    [wheel] = (tmp / "wheel").glob("s2s-*.whl")
    venv.EnvBuilder(with_pip=True).create(tmp / "venv")
    bin_dir = tmp / "venv" / "bin"
    site = run(bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
               cwd=tmp).stdout.strip()  # fmt: skip
    Path(site, "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    done = run(
        bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-index", wheel, cwd=tmp
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return bin_dir


def test_the_installed_command_runs_outside_the_checkout(installed, tmp_path):
    where = run(installed / "python", "-c", "import s2s; print(s2s.__file__)", cwd=tmp_path)
    assert where.returncode == 0 and str(ROOT) not in where.stdout
    assert "venv" in where.stdout
    done = run(installed / "s2s", "--help", cwd=tmp_path)
    assert done.returncode == 0 and "translate" in done.stdout


def test_the_installed_defaults_and_recipes_refuse_an_unknown_key(installed, tmp_path):
    args = ("train", "--lang", "zh-en", "--run", tmp_path / "x", "--set", "train.epoch=3")
    done = run(installed / "s2s", *args, cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown key 'train.epoch'" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()


def test_the_installed_command_translates_with_a_trained_run(installed, trained_run, tmp_path):
    done = run(installed / "s2s", "translate", "--run", trained_run, cwd=tmp_path,
               stdin="我们走吧。\n\n")  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    import s2s

    assert done.stdout.split("\n")[:2] == [*s2s.load(trained_run).translate(["我们走吧。"]), ""]
