"""Every section of ``docs/EXTENDING.md`` runs as written (issue 19).

Per section (``## Writers``, ``## Dataset kinds``, ``## Temporal models``, ``## Decoder
backends``), in a fresh empty folder outside the repository and in document order: a
```` ```python file=NAME.py ```` block is written to ``NAME.py``, a ```` ```bash ```` block runs
with ``bash -euo pipefail`` (this interpreter's folder first on ``PATH``, so ``video-lstm`` and
``python`` are the project's); other blocks (```` ```text ````) are shown, not run. Each section
makes its own tiny data and ends with a check that fails when its extension was not used; the
repository's ``git status`` is the same afterwards. A section without runnable blocks is
skipped, saying so, until it is written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "EXTENDING.md"
SECTIONS = ("Writers", "Dataset kinds", "Temporal models", "Decoder backends")
# A fence at the start of a line: its language, its attributes, its body.
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
FILE_ATTR = re.compile(r"\bfile=(\S+)")
TIMEOUT_S = 300  # a section should take about 20 s; this only stops a hung one


def sections() -> dict[str, str]:
    """``{## heading: its text}`` of the document (fences are skipped when splitting)."""
    found: dict[str, str] = {}
    name, lines, fenced = None, [], False
    for line in DOC.read_text(encoding="utf-8").splitlines(keepends=True):
        if re.match(r"```(?!`)", line):  # not ```` ```x ```` (inline code naming a fence)
            fenced = not fenced
        if not fenced and line.startswith("## "):
            if name is not None:
                found[name] = "".join(lines)
            name, lines = line[3:].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        found[name] = "".join(lines)
    return found


def runnable(text: str) -> list[tuple[str, str, str]]:
    """``(kind, file name or "", body)`` of the blocks that run: ``file`` or ``bash``."""
    out = []
    for lang, attrs, body in FENCE.findall(text):
        file = FILE_ATTR.search(attrs)
        if file is not None:
            out.append(("file", file.group(1), body))
        elif lang == "bash":
            out.append(("bash", "", body))
    return out


def _git_status() -> str:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return ""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEO_LSTM_")}
    bindir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),  # the checkout's code, installed or not
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
        HOME=str(home),  # nothing a section writes lands in the real home
    )
    return env


def test_the_document_has_its_four_sections():
    found = sections()
    assert list(found)[: len(SECTIONS)] == list(SECTIONS), list(found)
    for name, text in found.items():
        files = [f for kind, f, _ in runnable(text) if kind == "file"]
        assert len(files) == len(set(files)), f"{name}: a file is written twice"


@pytest.mark.parametrize("section", SECTIONS)
def test_section_runs_as_written(section: str, tmp_path: Path):
    blocks = runnable(sections().get(section, ""))
    if not blocks:
        pytest.skip(f"docs/EXTENDING.md '{section}' has no runnable block yet (its slice fills it)")
    work = tmp_path / "work"
    work.mkdir()
    assert ROOT not in work.resolve().parents  # outside the repository
    before = _git_status()
    env = _env(tmp_path)
    for n, (kind, name, body) in enumerate(blocks):
        if kind == "file":
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(body, encoding="utf-8")
            continue
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert done.returncode == 0, (
            f"docs/EXTENDING.md '{section}', bash block {n} (exit {done.returncode}):\n{body}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
    assert _git_status() == before, "the section changed the repository"
