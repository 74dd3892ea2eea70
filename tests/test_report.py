"""The HTML report of a folder run, checked as files and in a real browser (headless Chromium
through Playwright, with Debian's ``chromium``: ``make test`` installs it when missing).

The run is a real one: H.264 videos written here, a small checkpoint, ``video-lstm run``.
"""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from test_batch import make_checkpoint, write_video

from pipelines.cli import main as cli_main
from pipelines.report import build_report
from pipelines.report_browser import chromium_path, launch_chromium, screenshot_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two good videos (one nested, 3 s each), one broken file; annotated at threshold 0 so the
    random-weight model labels every frame and finds segments."""
    tmp = tmp_path_factory.mktemp("report")
    src = tmp / "in"
    write_video(src / "a.mp4", 75)
    write_video(src / "sub" / "b c.mp4", 75, width=96, height=64)
    (src / "broken.mp4").write_bytes(b"not a video at all")
    ckpt = make_checkpoint(tmp / "m.pt")
    out = tmp / "out"
    code = cli_main(
        ["run", str(src), str(ckpt), str(out), "--threshold", "0", "--progress", "false"]
    )
    assert code == 1  # the broken video failed, the others went on
    assert (out / "index.html").is_file()  # the run wrote its report
    build_report(str(out))  # idempotent: a rebuild over the run's own report
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("href", "src") and value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: Path) -> _Links:
    p = _Links()
    p.feed(page.read_text(encoding="utf-8"))
    return p


def _local_targets(page: Path) -> list[Path]:
    out = []
    for url in _parse(page).urls:
        parsed = urlparse(url)
        if parsed.scheme in ("data",) or url.startswith("#"):
            continue
        assert not parsed.scheme and not parsed.netloc, f"{page}: external URL {url}"
        out.append((page.parent / unquote(parsed.path)).resolve())
    return out


def _pages(run_dir: Path) -> list[Path]:
    """Every page reachable from index.html."""
    seen, todo = [], [run_dir / "index.html"]
    while todo:
        page = todo.pop()
        if page in seen:
            continue
        seen.append(page)
        todo += [t for t in _local_targets(page) if t.suffix == ".html" and t not in seen]
    return seen


def test_index_lists_every_video_with_status_and_reason(run_dir: Path):
    text = " ".join(_parse(run_dir / "index.html").text)
    for rel in ("a.mp4", "sub/b c.mp4", "broken.mp4"):
        assert rel in text
    assert text.count("done") >= 2 and "failed" in text
    # The failure's reason names the problem; the good videos show their duration (3.0 s).
    assert re.search(r"not a video|could not|invalid|no video", text, re.I)
    assert text.count("3.0 s") == 2


def test_every_link_resolves_and_nothing_is_fetched(run_dir: Path):
    pages = _pages(run_dir)
    assert len(pages) == 3  # the index and the two annotated videos
    for page in pages:
        for target in _local_targets(page):
            assert target.is_file(), f"{page.name}: broken link to {target}"


def test_video_page_links_clips_with_thumbnails(run_dir: Path):
    page = next(p for p in _pages(run_dir) if p.name.startswith("a"))
    targets = _local_targets(page)
    clips = sorted({t for t in targets if "clips" in t.parts})  # linked by table and thumbnail
    thumbs = [t for t in targets if t.suffix == ".jpg"]
    assert clips and len(thumbs) == len(clips)
    assert all(t.read_bytes()[:3] == b"\xff\xd8\xff" for t in thumbs)  # JPEG
    assert any(t.name.endswith("_annotated.mp4") for t in targets)


def test_result_json_has_per_frame_confidence_drawn_on_the_page(run_dir: Path):
    page = next(p for p in _pages(run_dir) if p.name.startswith("a"))
    result = json.loads(page.with_suffix(".json").read_text())
    conf = result["frame_confidence"]
    assert len(conf) == result["video"]["num_frames"] == 75
    assert all(0.0 <= c <= 1.0 for c in conf) and max(conf) > 0.5  # 2 classes: max >= 0.5
    points = re.search(r'<svg class="curve".*?<polyline points="([^"]+)"', page.read_text(), re.S)
    assert points and len(points.group(1).split()) == 75


def test_report_command_rejects_a_folder_without_a_run(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nothing to report"):
        build_report(str(tmp_path))


# ------------------------------------------------------------------ in the browser


@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: `make browser` installs it")
        pytest.skip("no chromium: apt-get install chromium (make test does it as root)")
    pytest.importorskip("playwright.sync_api")
    with launch_chromium() as b:
        yield b


def _open(browser, page_path: Path):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def test_pages_load_without_console_errors(browser, run_dir: Path):
    for page_path in _pages(run_dir):
        page, problems = _open(browser, page_path)
        page.wait_for_timeout(300)
        assert problems == [], f"{page_path.name}: {problems}"
        page.close()


def test_video_plays_and_segment_click_seeks(browser, run_dir: Path):
    page_path = next(p for p in _pages(run_dir) if p.name.startswith("a"))
    page, problems = _open(browser, page_path)
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    # H.264 in Debian's Chromium: it must actually decode and advance.
    page.evaluate("document.getElementById('player').play()")
    page.wait_for_function("document.getElementById('player').currentTime > 0.5", timeout=15_000)
    state = page.evaluate(
        "(() => { const v = document.getElementById('player');"
        " return {ready: v.readyState, error: v.error && v.error.code, w: v.videoWidth}; })()"
    )
    assert state["ready"] >= 2 and state["error"] is None and state["w"] == 64
    page.evaluate("document.getElementById('player').pause()")

    segs = page.query_selector_all(".timeline .seg")
    assert segs, "no segment on the timeline"
    for seg in segs[::-1]:  # the last one first: a seek away from where the player is
        start = float(seg.get_attribute("data-seek"))
        box = seg.bounding_box()
        assert box and box["width"] > 0
        seg.click()
        page.wait_for_function(
            f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.05 && "
            "!document.getElementById('player').seeking"
        )
    # The segment table's row numbers seek too.
    first = page.query_selector("table a.seek")
    target = float(first.get_attribute("data-seek"))
    first.click()
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {target}) < 0.05"
    )
    assert problems == []
    page.close()


def test_screenshots_of_the_run_and_a_video_page(browser, run_dir: Path, tmp_path: Path):
    shots = screenshot_report(browser, run_dir, tmp_path)
    for shot in shots:
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


# ------------------------------------------------------------------ training, compare, evaluate


@pytest.fixture
def training_dir(tmp_path: Path) -> Path:
    """A training log folder as Lightning writes it (CSVLogger's metrics.csv: per-step rows and
    per-epoch rows), its checkpoints and config, and the demo's frame confusion."""
    log = tmp_path / "runs" / "t" / "version_0"
    (log / "checkpoints").mkdir(parents=True)
    rows = ["epoch,step,train/loss_step,train/loss_epoch,train/acc,val/loss,val/acc"]
    for e in range(3):
        rows.append(f"{e},{e * 4 + 1},{2.0 - e * 0.5:.2f},,,,")
        rows.append(f"{e},{e * 4 + 3},,,,{1.9 - e * 0.4:.2f},{0.4 + e * 0.2:.2f}")
        rows.append(f"{e},{e * 4 + 3},,{1.8 - e * 0.5:.2f},{0.5 + e * 0.1:.2f},,")
    (log / "metrics.csv").write_text("\n".join(rows) + "\n")
    (log / "config.yaml").write_text("model:\n  lr: 0.003\n")
    for name in ("best-epoch002.ckpt", "last.ckpt"):
        (log / "checkpoints" / name).write_bytes(b"0")
    (log / "confusion.json").write_text(
        json.dumps({"class_names": ["a", "b"], "confusion": [[5, 1], [0, 4]], "title": "demo"})
    )
    return log


def test_training_page_has_curves_confusion_and_links(training_dir: Path):
    index = Path(build_report(str(training_dir)))
    html_text = index.read_text()
    charts = re.findall(r'<svg class="chart".*?</svg>', html_text, re.S)
    assert len(charts) == 2  # loss, accuracy
    assert "val/acc 0.8" in charts[1] and charts[1].count("<circle") == 3 * 2  # val + train acc
    assert re.search(r'<td style="background:rgba\([^)]*\)">5</td>', html_text)
    for target in _local_targets(index):
        assert target.is_file(), target


def test_compare_page_links_each_run_and_plots_val_accuracy(training_dir: Path, tmp_path: Path):
    out = tmp_path / "cmp"
    out.mkdir()
    ckpt = training_dir / "checkpoints" / "last.ckpt"
    (out / "compare.csv").write_text(
        f"name,temporal,video_top1,checkpoint\nconvlstm,convlstm,0.9,{ckpt}\n"
        f"meanpool,meanpool,0.2,{tmp_path / 'gone' / 'checkpoints' / 'last.ckpt'}\n"
    )
    index = Path(build_report(str(out)))
    text = " ".join(_parse(index).text)
    assert "convlstm" in text and "meanpool" in text and "0.9" in text
    targets = _local_targets(index)
    assert training_dir / "index.html" in targets  # the run with logs links to its page
    assert all(t.is_file() for t in targets)
    assert '<svg class="chart"' in index.read_text()


def test_evaluate_page_shows_accuracies_and_confusion(tmp_path: Path):
    import numpy as np

    from video_lstm.training.evaluate import video_metrics

    # What evaluate_checkpoint writes: 4 videos, one "b" taken for "a".
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    metrics = video_metrics(probs, np.array([0, 0, 1, 1]), ["walk", "run"])
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = Path(build_report(str(tmp_path)))
    text = " ".join(_parse(page).text)
    assert "top1" in text and "0.75" in text and "true \\ predicted" in text
    assert re.search(
        r"<td>run</td><td class=num>0.5</td>|<td>run</td><td>0.5</td>", page.read_text()
    )


def test_training_page_loads_without_console_errors(browser, training_dir: Path):
    page, problems = _open(browser, Path(build_report(str(training_dir))))
    page.wait_for_timeout(200)
    assert problems == []
    page.close()
