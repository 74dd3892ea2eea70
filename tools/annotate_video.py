"""Annotate one video: segments (JSON/CSV/SRT/VTT), an annotated H.264 video, labelled clips.

Example:
    python tools/annotate_video.py match.mp4 model.pt out/ --threshold 0.6 --outputs '[json,csv,video]'
"""

from __future__ import annotations

from jsonargparse import CLI

from pipelines.annotate import annotate_video


def main(argv: list[str] | None = None) -> None:
    result = CLI(annotate_video, args=argv, as_positional=True)
    for seg in result.segments:
        print(f"{seg.start_s:9.2f}-{seg.end_s:9.2f} s  {seg.label}  {seg.score:.2f}")
    print(f"{len(result.segments)} segments; wrote {len(result.output_files)} files")


if __name__ == "__main__":
    main()
