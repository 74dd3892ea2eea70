"""Static HTML reports: open ``index.html`` in a browser, no server, nothing fetched.

``video-lstm report DIR`` (or :func:`build_report`) finds what ``DIR`` holds and writes its page:

- a folder run (``manifest.json``): ``DIR/index.html`` with a table of every video (status,
  duration, segments found, time taken, the reason of each failure) and one page per annotated
  video next to its outputs (``<name>.html``): the annotated video in a player with the
  subtitles, a timeline of the segments coloured by class (a click seeks the player), the
  per-frame confidence curve, a thumbnail of every clip linking to it, a link to every other
  writer's files (the record lists them by writer: ``video_lstm.inference.writers``, plugins'
  writers included), the settings and model;
- a training run (Lightning ``metrics.csv``): loss and accuracy curves per epoch, the
  checkpoints, the resolved ``config.yaml``, and a confusion matrix when one was written
  (``confusion.json`` or an ``evaluate`` ``metrics.json`` in the folder);
- a ``compare`` output (``compare.csv``): the comparison table, the plot and each config's curves;
- an ``evaluate`` output (``metrics.json``): top-1/top-5, per-class table, confusion matrix.

Pages are views: they read the run's records and result JSONs (``io.results.load_result``, any
schema version) and never change them. The CSS and
script are copied to ``DIR/_report/`` (with the clip thumbnails), so the folder can be zipped,
copied or served as it is. The folder run writes its report when it finishes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from video_lstm.io.results import ResultDoc

__all__ = [
    "build_report",
    "compare_report",
    "evaluate_report",
    "folder_report",
    "training_report",
    "write_run_report",
]

STATIC = Path(__file__).resolve().parent / "report_static"
ASSETS = "_report"  # next to index.html: report.css, report.js, thumbs/
MAX_CURVE_POINTS = 1200


# ------------------------------------------------------------------ small helpers


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(target: Path, page: Path) -> str:
    """URL of ``target`` relative to the folder of ``page`` (both on disk), percent-encoded."""
    rel = Path(_relpath(target, page.parent))
    return "/".join(quote(part) for part in rel.parts)


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())


def _fmt_s(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    m, s = divmod(float(seconds), 60)
    return f"{int(m)}:{s:04.1f}" if m else f"{s:.1f} s"


def _color(index: int) -> str:
    from video_lstm.io.overlay import class_colors  # the overlay's colours: page = video

    r, g, b = (int(c) for c in class_colors(index + 1)[index])
    return f"#{r:02x}{g:02x}{b:02x}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write(path: Path, text: str) -> Path:
    """Atomic write; a page whose text is unchanged is left alone (a rebuild over an unchanged
    run touches nothing)."""
    from video_lstm.io.files import atomic_path

    with contextlib.suppress(OSError):
        if path.read_text(encoding="utf-8") == text:
            return path
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _page(title: str, body: str, page: Path, root: Path, crumbs: Sequence[tuple[str, Path]] = ()):
    css = _href(root / ASSETS / "report.css", page)
    js = _href(root / ASSETS / "report.js", page)
    nav = " / ".join(f'<a href="{_href(p, page)}">{_e(t)}</a>' for t, p in crumbs)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{css}"></head>\n<body>\n'
        f"{f'<nav>{nav}</nav>' if nav else ''}<h1>{_e(title)}</h1>\n{body}\n"
        f'<script src="{js}"></script>\n</body></html>\n'
    )


def _copy_assets(root: Path) -> None:
    dst = root / ASSETS
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("report.css", "report.js"):
        _write(dst / name, (STATIC / name).read_text(encoding="utf-8"))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()) -> str:
    head = "".join(f"<th{' class=num' if i in num else ''}>{h}</th>" for i, h in enumerate(header))
    body = "\n".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [kv for k, v in obj.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix[:-1], obj)]


def _settings_block(obj: Any) -> str:
    """Nested settings as one table of ``group.field  value`` rows."""
    rows = [
        [f"<code>{_e(k)}</code>", _e(json.dumps(v) if not isinstance(v, str) else v)]
        for k, v in _flatten(obj)
    ]
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="settings">{body}</table>'


# ------------------------------------------------------------------ charts (inline SVG)


def _downsample(values: Sequence[float], n: int = MAX_CURVE_POINTS) -> list[tuple[int, float]]:
    """Keep at most ``n`` points; each kept point is the minimum of its bucket (dips stay)."""
    if len(values) <= n:
        return list(enumerate(values))
    step = len(values) / n
    out = []
    for k in range(n):
        lo, hi = int(k * step), max(int((k + 1) * step), int(k * step) + 1)
        bucket = values[lo:hi]
        j = min(range(len(bucket)), key=bucket.__getitem__)
        out.append((lo + j, bucket[j]))
    return out


def _confidence_svg(conf: Sequence[float], threshold: float | None) -> str:
    """Per-frame confidence (0..1) as an SVG polyline, 1000 x 100 user units, stretched."""
    n = len(conf)
    pts = _downsample([float(c) for c in conf])
    w, h = 1000.0, 100.0
    xs = [(i + 0.5) / n * w for i, _ in pts]
    line = " ".join(f"{x:.1f},{h - c * h:.1f}" for x, (_, c) in zip(xs, pts, strict=True))
    thr = ""
    if threshold is not None and 0 < threshold < 1:
        y = h - threshold * h
        thr = (
            f'<line x1="0" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#b42318" '
            'stroke-dasharray="6 4" stroke-width="1" vector-effect="non-scaling-stroke"/>'
        )
    return (
        f'<svg class="curve" viewBox="0 0 {w:.0f} {h:.0f}" preserveAspectRatio="none" '
        'role="img" aria-label="per-frame confidence">'
        f"{thr}"
        f'<polyline points="{line}" fill="none" stroke="#1570ef" stroke-width="1.5" '
        'vector-effect="non-scaling-stroke"/></svg>'
    )


def _line_chart(title: str, series: dict[str, list[tuple[float, float]]]) -> str:
    """Small multi-series line chart (x: epoch) with axis labels, as inline SVG."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    w, h, pad = 520, 220, 36
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def px(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (w - 2 * pad)

    def py(y: float) -> float:
        return h - pad - (y - y0) / (y1 - y0) * (h - 2 * pad)

    palette = ["#1570ef", "#f79009", "#12b76a", "#b42318", "#7a5af8", "#667085"]
    parts = [
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#98a2b3"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#98a2b3"/>',
        f'<text x="{pad}" y="{pad - 8}" font-size="12">{_e(title)}</text>',
        f'<text x="{w - pad}" y="{h - 8}" font-size="11" text-anchor="end">epoch</text>',
        f'<text x="{pad - 4}" y="{h - pad}" font-size="10" text-anchor="end">{y0:.3g}</text>',
        f'<text x="{pad - 4}" y="{pad + 4}" font-size="10" text-anchor="end">{y1:.3g}</text>',
        f'<text x="{pad}" y="{h - pad + 14}" font-size="10" text-anchor="middle">{x0:g}</text>',
        f'<text x="{w - pad}" y="{h - pad + 14}" font-size="10" text-anchor="middle">{x1:g}</text>',
    ]
    for k, (name, pts) in enumerate(series.items()):
        color = palette[k % len(palette)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>' for x, y in pts
        ]
        parts.append(
            f'<text x="{w - pad}" y="{pad + 14 * k}" font-size="11" fill="{color}" '
            f'text-anchor="end">{_e(name)} {pts[-1][1]:.3g}</text>'
        )
    return (
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(title)}">'
        + "".join(parts)
        + "</svg>"
    )


def _confusion_table(matrix: Sequence[Sequence[float]], names: Sequence[str]) -> str:
    """Rows: true class; columns: predicted; cells shaded by their share of the row."""
    head = "".join(f'<th title="{_e(n)}">{_e(n[:10])}</th>' for n in names)
    rows = []
    for name, row in zip(names, matrix, strict=False):
        total = sum(row) or 1
        cells = []
        for j, v in enumerate(row):
            share = v / total
            diag = j == len(cells) and names[j] == name
            rgb = "18,183,106" if diag else "240,68,56"
            cells.append(
                f'<td style="background:rgba({rgb},{share:.2f})">{v:g}</td>' if v else "<td></td>"
            )
        rows.append(f"<tr><th>{_e(name)}</th>{''.join(cells)}</tr>")
    return (
        '<table class="confusion"><thead><tr><th>true \\ predicted</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# ------------------------------------------------------------------ folder runs


def _thumbnail(clip: Path, root: Path, width: int = 160) -> Path | None:
    """A JPEG of the clip's middle frame under ``_report/thumbs`` (kept while the clip is)."""
    import cv2

    from video_lstm.errors import VideoError
    from video_lstm.io.decode import open_video

    st = clip.stat()
    key = hashlib.sha1(f"{clip.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    out = root / ASSETS / "thumbs" / f"{key}.jpg"
    if out.is_file():
        return out
    try:
        with open_video(clip, backend="pyav") as v:
            frame = v.get_frames([v.num_frames // 2])[0]  # (H, W, 3) RGB
    except (VideoError, OSError, ValueError, IndexError):
        return None
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80]
    )
    if not ok:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    from video_lstm.io.files import atomic_path

    with atomic_path(out) as tmp:
        tmp.write_bytes(data.tobytes())
    return out


def _clip_of(segment: dict[str, Any], clips: list[Path]) -> Path | None:
    """The clip cut for ``segment``: named ``..._<start>-<end>.mp4``, in its label's folder."""
    tail = f"_{int(segment['start_frame']):06d}-{int(segment['end_frame']):06d}.mp4"
    found = [c for c in clips if c.name.endswith(tail)]
    return next((c for c in found if c.parent.name == segment.get("label")), None) or (
        found[0] if found else None
    )


def _video_page(
    run_dir: Path,
    rel: str,
    record: dict[str, Any],
    result: ResultDoc,
    files: dict[str, list[Path]],
    page: Path,
) -> str:
    info = result.video.to_dict()
    model = result.model
    settings = result.settings
    names = list(model.get("class_names") or [])
    segments = [seg.to_dict() for seg in result.segments]
    fps = float(info.get("fps") or 0) or 1.0
    duration = float(info.get("duration") or (info.get("num_frames") or 0) / fps)
    # The two writers the page shows (a player, clip cards); every other one's files are links.
    annotated = next(iter(files.get("video", [])), None)
    clips = list(files.get("clips", []))

    parts = [f'<p class="muted">{_e(info.get("path", rel))}</p>']
    parts.append(
        '<div class="cards">'
        f'<div class="card">duration<b>{_fmt_s(duration)}</b></div>'
        f'<div class="card">frames<b>{_e(info.get("num_frames", ""))}</b></div>'
        f'<div class="card">fps<b>{fps:g}</b></div>'
        f'<div class="card">size<b>{_e(info.get("width", ""))}x{_e(info.get("height", ""))}</b></div>'
        f'<div class="card">segments<b>{len(segments)}</b></div>'
        "</div>"
    )
    if annotated is not None:
        parts.append(
            f'<video id="player" controls preload="auto" muted playsinline '
            f'data-duration="{duration:.3f}" src="{_href(annotated, page)}"></video>'
        )
    else:
        parts.append(
            f'<p class="muted" id="player-missing">No annotated video was written '
            f"(outputs: {_e(', '.join(settings.get('outputs') or []))}).</p>"
        )

    # Timeline: one button per segment, coloured by class; a click seeks the player.
    used = sorted(
        {s.get("label") for s in segments}, key=lambda n: names.index(n) if n in names else 1e9
    )
    legend = "".join(
        f'<span><span class="swatch" style="background:{_color(names.index(n) if n in names else 0)}">'
        f"</span>{_e(n)}</span>"
        for n in used
    )
    segs = []
    for k, s in enumerate(segments):
        start, end = float(s["start_s"]), float(s["end_s"])
        left = 100 * start / duration if duration else 0
        width = 100 * max(end - start, 0) / duration if duration else 0
        label = str(s.get("label"))
        color = _color(names.index(label) if label in names else 0)
        segs.append(
            f'<button class="seg" id="seg-{k}" data-seek="{start:.3f}" '
            f'title="{_e(label)} {start:.2f}-{end:.2f} s ({float(s.get("score", 0)):.2f})" '
            f'style="left:{left:.3f}%;width:{width:.3f}%;background:{color}"></button>'
        )
    parts.append("<h2>Segments</h2>")
    parts.append(f'<div class="legend">{legend}</div>')
    parts.append(
        f'<div class="timeline" id="timeline">{"".join(segs)}<div class="playhead"></div></div>'
    )

    conf = result.frame_confidence
    if conf:
        parts.append(
            "<h2>Confidence per frame</h2>"
            '<p class="muted">Smoothed probability of the most likely action (background excluded); dashed: the '
            "threshold an action must clear.</p>"
            f'<div class="curve-wrap">{_confidence_svg(conf, (settings.get("segments") or settings).get("threshold"))}'
            '<div class="playhead"></div></div>'
        )

    rows = []
    for k, s in enumerate(segments):
        label = str(s.get("label"))
        clip = _clip_of(s, clips)
        link = f'<a href="{_href(clip, page)}">clip</a>' if clip is not None else ""
        rows.append(
            [
                f'<a href="#" data-seek="{float(s["start_s"]):.3f}" class="seek">{k + 1}</a>',
                f'<span class="swatch" style="background:{_color(names.index(label) if label in names else 0)}"></span>{_e(label)}',
                f"{float(s['start_s']):.2f}",
                f"{float(s['end_s']):.2f}",
                f"{int(s['start_frame'])}-{int(s['end_frame'])}",
                f"{float(s.get('score', 0)):.2f}",
                link,
            ]
        )
    if rows:
        parts.append(
            _table(
                ["#", "label", "start s", "end s", "frames", "score", "clip"], rows, num=(2, 3, 5)
            )
        )
    else:
        parts.append('<p class="muted">No action found.</p>')

    if clips:
        cards = []
        for c in clips:
            thumb = _thumbnail(c, run_dir)
            label = c.parent.name
            img = (
                f'<img src="{_href(thumb, page)}" alt="{_e(c.name)}" loading="lazy">'
                if thumb is not None
                else ""
            )
            cards.append(
                f'<div class="clip"><a href="{_href(c, page)}">{img}</a>'
                f'<div>{_e(label)}</div><div class="muted">{_e(c.name)}</div></div>'
            )
        parts.append(f'<h2>Clips</h2><div class="clips">{"".join(cards)}</div>')

    others = [f for name, fs in files.items() if name not in ("video", "clips") for f in fs]
    if others:
        links = " · ".join(f'<a href="{_href(f, page)}">{_e(f.name)}</a>' for f in others)
        parts.append(f"<h2>Files</h2><p>{links}</p>")
    parts.append("<h2>Model</h2>")
    parts.append(
        _table(
            ["checkpoint", "classes", "clip length", "frame interval", "input size"],
            [
                [
                    _e(model.get("checkpoint", "")),
                    _e(", ".join(names)),
                    _e(model.get("clip_len", "")),
                    _e(model.get("frame_interval", "")),
                    _e(model.get("frame_size", "")),
                ]
            ],
        )
    )
    if model.get("model"):
        parts.append(
            "<details><summary>model configuration</summary>"
            + _settings_block(model["model"])
            + "</details>"
        )
    parts.append("<h2>Settings</h2>" + _settings_block(settings))
    return "\n".join(parts)


def folder_report(run_dir: str | Path) -> Path:
    """``run_dir/index.html`` and one page per annotated video, from the run's records.

    Args:
        run_dir: A folder run's output folder (it holds ``manifest.json``).

    Returns:
        The index page.
    """
    from pipelines.jobs import read_run, record_files
    from video_lstm.io.results import load_result

    root = Path(run_dir)
    header, records = read_run(root)
    _copy_assets(root)
    index = root / "index.html"
    rows, counts = [], {}
    for rel, record in records.items():
        status = str(record.get("status", "unknown"))
        counts[status] = counts.get(status, 0) + 1
        files = record_files(root, rel, record) if status != "failed" else {}
        result_file = next(
            (f for f in files.get("json", []) if not f.name.endswith(".done.json")), None
        )
        result = None
        if result_file is not None:
            with contextlib.suppress(OSError, ValueError):  # a damaged JSON: no page, a row
                result = load_result(result_file)
        name_cell = _e(rel)
        duration = segments = ""
        if result is not None:
            page = result_file.with_suffix(".html")
            body = _video_page(root, rel, record, result, files, page)
            _write(page, _page(rel, body, page, root, [("run", index)]))
            name_cell = f'<a href="{_href(page, index)}">{_e(rel)}</a>'
            duration = _fmt_s(result.video.duration)
            segments = str(len(result.segments))
        elif record.get("segments") is not None:
            segments = str(record["segments"])
        reason = record.get("reason") if status == "failed" else ""
        seconds = record.get("seconds")
        rows.append(
            [
                name_cell,
                f'<span class="status {_e(status)}">{_e(status)}</span>',
                duration,
                segments,
                f"{float(seconds):.1f}" if isinstance(seconds, (int, float)) else "",
                f'<span class="reason">{_e(reason)}</span>' if reason else "",
            ]
        )
    cards = "".join(f'<div class="card">{_e(k)}<b>{v}</b></div>' for k, v in sorted(counts.items()))
    body = [
        f'<div class="cards"><div class="card">videos<b>{len(records)}</b></div>{cards}</div>',
        _table(
            ["video", "status", "duration", "segments", "time s", "failure"], rows, num=(2, 3, 4)
        )
        if rows
        else '<p class="muted">No videos in this run.</p>',
    ]
    meta = {k: header[k] for k in ("input_dir", "checkpoint", "started", "updated") if k in header}
    if meta:
        body.append("<h2>Run</h2>" + _table(list(meta), [[_e(v) for v in meta.values()]]))
    if header.get("settings"):
        body.append(
            '<h2>Settings</h2><p class="muted">As given; <code>null</code>: the checkpoint\'s '
            "calibrated value or the default (each video's page shows the values used).</p>"
            + _settings_block(header["settings"])
        )
    title = f"Annotated videos: {root.resolve().name}"
    return _write(index, _page(title, "\n".join(body), index, root))


# ------------------------------------------------------------------ training, compare, evaluate


def _metrics_curves(metrics_csv: Path) -> dict[str, list[tuple[float, float]]]:
    """Per-epoch series from a Lightning ``metrics.csv`` (last value logged in each epoch)."""
    series: dict[str, dict[float, float]] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            try:
                epoch = float(row.get("epoch") or "nan")
            except ValueError:
                continue
            if not math.isfinite(epoch):
                continue
            for key, value in row.items():
                if key in ("epoch", "step") or not value:
                    continue
                with contextlib.suppress(ValueError):
                    series.setdefault(key, {})[epoch] = float(value)
    return {k: sorted(v.items()) for k, v in series.items()}


def _per_class_rows(doc: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """``per_class`` as ``{name: {...}}`` (trimmed evaluate) or ``[{"class": name, ...}]``."""
    per_class = doc.get("per_class")
    if isinstance(per_class, dict):
        return list(per_class), [
            v if isinstance(v, dict) else {"value": v} for v in per_class.values()
        ]
    if isinstance(per_class, list) and all(isinstance(r, dict) for r in per_class):
        return [str(r.get("class", "")) for r in per_class], [
            {k: v for k, v in r.items() if k != "class"} for r in per_class
        ]
    return [], []


def _fmt_cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else _e(v)


def _confusion_section(folder: Path) -> str:
    for name in ("confusion.json", "metrics.json"):
        doc = _read_json(folder / name)
        if isinstance(doc, dict) and doc.get("confusion"):
            names = doc.get("class_names") or _per_class_rows(doc)[0]
            if not names or None in names:
                names = [str(i) for i in range(len(doc["confusion"]))]
            what = doc.get("title") or ("held-out videos" if name == "metrics.json" else "")
            return f'<h2>Confusion matrix</h2><p class="muted">{_e(what)}</p>' + _confusion_table(
                doc["confusion"], names
            )
    return ""


def _training_body(log_dir: Path, page: Path) -> str:
    curves = _metrics_curves(log_dir / "metrics.csv")
    loss = {k: v for k, v in curves.items() if "loss" in k and not k.endswith("_step")}
    acc = {k: v for k, v in curves.items() if k.endswith("acc") or k.endswith("acc5")}
    parts = [
        '<div class="charts">',
        _line_chart("loss", loss),
        _line_chart("accuracy", acc),
        "</div>",
    ]
    last = {k: v[-1][1] for k, v in curves.items() if v}
    if last:
        parts.append(
            "<h2>Last epoch</h2>"
            + _table(
                ["metric", "value"],
                [[_e(k), f"{v:.4g}"] for k, v in sorted(last.items())],
                num=(1,),
            )
        )
    ckpts = sorted((log_dir / "checkpoints").glob("*.ckpt"))
    if ckpts:
        parts.append(
            "<h2>Checkpoints</h2><p>"
            + " · ".join(f'<a href="{_href(c, page)}">{_e(c.name)}</a>' for c in ckpts)
            + "</p>"
        )
    parts.append(_confusion_section(log_dir))
    if (log_dir / "config.yaml").is_file():
        parts.append(
            f'<h2>Config</h2><p><a href="{_href(log_dir / "config.yaml", page)}">config.yaml</a></p>'
            f"<details><summary>resolved config</summary><pre>{_e((log_dir / 'config.yaml').read_text(encoding='utf-8'))}</pre></details>"
        )
    return "\n".join(parts)


def training_report(log_dir: str | Path) -> Path:
    """``log_dir/index.html`` for a training run (``metrics.csv``, checkpoints, config)."""
    root = Path(log_dir)
    if not (root / "metrics.csv").is_file():
        raise FileNotFoundError(f"{root}: no metrics.csv: not a training run")
    _copy_assets(root)
    index = root / "index.html"
    return _write(
        index,
        _page(f"Training run: {root.resolve().name}", _training_body(root, index), index, root),
    )


def compare_report(out_dir: str | Path) -> Path:
    """``out_dir/index.html`` for ``video-lstm compare``: the table, the plot, each run's curves."""
    root = Path(out_dir)
    with open(root / "compare.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    _copy_assets(root)
    index = root / "index.html"
    cols = [c for c in (rows[0].keys() if rows else []) if c != "checkpoint"]
    parts = []
    table_rows = []
    for r in rows:
        cells = [_e(r.get(c, "")) for c in cols]
        ckpt = Path(r.get("checkpoint") or "")
        log_dir = ckpt.parent.parent if ckpt.suffix == ".ckpt" else None
        if log_dir is not None and (log_dir / "metrics.csv").is_file():
            training_report(log_dir)
            cells[0] = f'<a href="{_href(log_dir / "index.html", index)}">{cells[0]}</a>'
        table_rows.append(cells)
    parts.append(_table([_e(c) for c in cols], table_rows))
    if (root / "compare.png").is_file():
        parts.append(
            f'<h2>Plot</h2><img src="{_href(root / "compare.png", index)}" alt="comparison plot" style="max-width:100%">'
        )
    curves = {}
    for r in rows:
        ckpt = Path(r.get("checkpoint") or "")
        metrics = ckpt.parent.parent / "metrics.csv"
        if ckpt.suffix == ".ckpt" and metrics.is_file():
            val = _metrics_curves(metrics).get("val/acc")
            if val:
                curves[r.get(cols[0], "?") if cols else "?"] = val
    if curves:
        parts.append(
            '<h2>Validation accuracy per epoch</h2><div class="charts">'
            + _line_chart("val/acc", curves)
            + "</div>"
        )
    return _write(index, _page(f"Comparison: {root.resolve().name}", "\n".join(parts), index, root))


def evaluate_report(out_dir: str | Path) -> Path:
    """``out_dir/index.html`` for ``video-lstm evaluate``: accuracies, per-class table, confusion."""
    root = Path(out_dir)
    doc = _read_json(root / "metrics.json")
    if not isinstance(doc, dict):
        raise FileNotFoundError(f"{root}: no readable metrics.json: not an evaluate output")
    _copy_assets(root)
    index = root / "index.html"
    scalars = {
        k: v for k, v in doc.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    if isinstance(doc.get("mAP"), dict):  # untrimmed: segment mAP per tIoU
        scalars.update(
            {f"mAP@{t}": v for t, v in doc["mAP"].items() if isinstance(v, (int, float))}
        )
    parts = [
        '<div class="cards">'
        + "".join(f'<div class="card">{_e(k)}<b>{v:.4g}</b></div>' for k, v in scalars.items())
        + "</div>"
    ]
    names, rows = _per_class_rows(doc)
    if rows:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        parts.append(
            "<h2>Per class</h2>"
            + _table(
                ["class", *map(_e, keys)],
                [
                    [_e(n), *(_fmt_cell(r.get(k, "")) for k in keys)]
                    for n, r in zip(names, rows, strict=True)
                ],
            )
        )
    parts.append(_confusion_section(root))
    for f in sorted(root.glob("*.png")):
        parts.append(f'<img src="{_href(f, index)}" alt="{_e(f.name)}" style="max-width:100%">')
    return _write(index, _page(f"Evaluation: {root.resolve().name}", "\n".join(parts), index, root))


def write_run_report(run_dir: str | Path) -> Path | None:
    """:func:`folder_report` at the end of a folder run: a report that cannot be written is a
    warning on stderr (the run's outputs and records are complete without it), never a failure."""
    import sys

    try:
        return folder_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - the report is a view; the run has succeeded
        print(f"warning: {run_dir}: report not written: {exc}", file=sys.stderr)
        return None


def build_report(run_dir: str) -> str:
    """Write the HTML report of ``run_dir`` (a folder run, a training run, ``compare`` or
    ``evaluate`` output) and return the path of its ``index.html``.

    Args:
        run_dir: The output folder of ``video-lstm run``, a training log folder
            (``runs/<name>/version_N``), or the output folder of ``compare`` / ``evaluate``.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{run_dir}: folder not found")
    if (root / "manifest.json").is_file():
        return str(folder_report(root))
    if (root / "compare.csv").is_file():
        return str(compare_report(root))
    if (root / "metrics.csv").is_file():
        return str(training_report(root))
    if (root / "metrics.json").is_file():
        return str(evaluate_report(root))
    raise FileNotFoundError(
        f"{run_dir}: nothing to report (no manifest.json, compare.csv, metrics.csv or metrics.json)"
    )
