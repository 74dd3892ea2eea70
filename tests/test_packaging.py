"""The wheel: built from the tracked sources, installed into a fresh folder, run from elsewhere.

The installed package must find what it reads (the recipe's config, the report's CSS and script)
through ``importlib.resources``, not from a source checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps`` of a copy of the files git tracks or would (not ignored) (the build writes ``build/`` and
    ``*.egg-info`` where it runs: not in the repository), installed with ``--target``."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, tracked):
        if (ROOT / name).is_file() and name.split("/")[0] in ("pyproject.toml", "README.md",
                                                              "LICENSE", "video_lstm", "pipelines"):  # fmt: skip
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                    str(src)], check=True, capture_output=True, cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("video_lstm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"video_lstm/configs/untrimmed_demo.yaml", "pipelines/report_static/report.css"} <= names
    target = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, cwd=tmp)  # fmt: skip
    return target


def _python(code: str, target: Path, cwd: Path) -> str:
    """Run ``code`` with the installed copy first on the path (the venv supplies the deps)."""
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_installed_wheel_finds_the_demo_config_from_any_folder(installed, tmp_path):
    out = _python(
        "import video_lstm, yaml\n"
        "from video_lstm.training.recipe import CONFIG\n"
        "print(video_lstm.__file__)\n"
        "print(CONFIG)\n"
        "print(yaml.safe_load(CONFIG.read_text())['model']['model_name'])\n",
        installed,
        tmp_path,
    )
    module, config, model = out.split()
    assert Path(module).is_relative_to(installed) and Path(config).is_relative_to(installed)
    assert model == "lstm_efficientnet_lite0"
    # the packaged file is the repository's configs/untrimmed_demo.yaml (a link to it)
    assert Path(config).read_bytes() == (ROOT / "configs" / "untrimmed_demo.yaml").read_bytes()


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_from_any_folder(installed, tmp_path):
    """``video-lstm demo`` from the installed copy, shortened (few videos, one epoch)."""
    out = _python(
        "import sys\nfrom pipelines.cli import main\n"
        "sys.exit(main(['demo', '--out_dir', 'out', '--train_videos', '16', '--max_epochs', '1',"
        " '--threads', '1']))\n",
        installed,
        tmp_path,
    )
    assert "Frame accuracy" in out
    assert (tmp_path / "out" / "model.ckpt").is_file()
    assert (tmp_path / "out" / "annotated" / "index.html").is_file()
