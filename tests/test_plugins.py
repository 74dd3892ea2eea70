"""Plugins (``video_lstm.plugins``): a file outside the repository, given with ``--plugin`` or
``VIDEO_LSTM_PLUGINS``, is imported by the console script and by the worker processes it
starts; a missing or failing plugin is one line naming it, exit code 2."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from video_lstm import plugins
from video_lstm.plugins import ENV_VAR, PluginError, load_plugins

ROOT = Path(__file__).resolve().parents[1]

# Each import appends this process's id to the file named by PLUGIN_MARK.
PLUGIN = """
import os
with open(os.environ["PLUGIN_MARK"], "a") as f:
    f.write(f"{os.getpid()}\\n")
"""


@pytest.fixture
def plugin(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """``(plugin file, marker file)`` in a temp folder outside the repository; the plugin
    state of this process and ``VIDEO_LSTM_PLUGINS`` are restored afterwards."""
    path = tmp_path / "my plugin.py"
    path.write_text(PLUGIN)
    mark = tmp_path / "mark.txt"
    monkeypatch.setenv("PLUGIN_MARK", str(mark))
    monkeypatch.setenv(ENV_VAR, "")  # so that undo removes what main() sets
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(plugins, "_loaded", {})
    return path, mark


def _pids(mark: Path) -> list[int]:
    return [int(line) for line in mark.read_text().split()] if mark.exists() else []


def test_cli_imports_the_plugin_and_passes_it_to_spawned_workers(plugin):
    path, mark = plugin
    assert main(["--plugin", str(path), "--help"]) == 0
    assert _pids(mark) == [os.getpid()]
    assert os.environ[ENV_VAR] == str(path.resolve())  # absolute: workers may start elsewhere
    assert main([f"--plugin={path}", "--help"]) == 0
    assert _pids(mark) == [os.getpid()]  # once per process

    # A spawned worker (no command line) loads it from the environment, as every table's
    # lookup does.
    proc = multiprocessing.get_context("spawn").Process(target=load_plugins)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    pids = _pids(mark)
    assert len(pids) == 2 and pids[1] == proc.pid


def test_console_script_and_environment(plugin, tmp_path):
    path, mark = plugin
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipelines.cli", "--plugin", str(path), "--help"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--plugin" in done.stdout
    assert len(_pids(mark)) == 1
    env[ENV_VAR] = str(path)
    cmd = [sys.executable, "-m", "pipelines.cli", "--help"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(_pids(mark)) == 2


def test_module_plugin(plugin, tmp_path, monkeypatch):
    _, mark = plugin
    (tmp_path / "my_plugin_module.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_plugin_module", raising=False)
    (module,) = load_plugins(["my_plugin_module"], export=False)
    assert module.__name__ == "my_plugin_module"
    assert _pids(mark) == [os.getpid()]
    assert ENV_VAR not in os.environ


def test_bad_plugins_are_one_line(plugin, tmp_path, capsys):
    path, _ = plugin
    missing = tmp_path / "nope.py"
    assert main(["--plugin", str(missing), "--help"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"video-lstm: error: plugin {missing}: no such file"
    assert main(["--plugin", "no_such_plugin_module", "--help"]) == 2
    assert "no module named 'no_such_plugin_module'" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('bad plugin')\n")
    assert main(["--plugin", str(broken), "--help"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.py: RuntimeError: bad plugin" in err
    with pytest.raises(PluginError):
        load_plugins([str(broken)])
    assert main(["--plugin"]) == 2
    assert "--plugin needs" in capsys.readouterr().err
