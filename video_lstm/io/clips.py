"""Labelled clips, cut frame-exactly by re-encoding, and where they go."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from video_lstm.io.files import safe_name
from video_lstm.io.video import FrameSource, VideoWriter, pad_even

# Longest label folder and video name in a clip path (UTF-8 bytes): the clip's file name adds
# at most ~24 bytes to the video name and must stay within 255.
LABEL_MAX_BYTES = 100
NAME_MAX_BYTES = 200


def clip_path(
    folder: str | Path,
    label: str,
    video_name: str,
    start_frame: int,
    end_frame: int,
    *,
    ext: str = ".mp4",
) -> Path:
    """Where a labelled clip goes: ``<folder>/<label>/<video_name>_<start>-<end><ext>``.

    ``start`` and ``end`` are source frame numbers, zero-padded to 6 digits (more if needed),
    ``end`` exclusive: ``clips/jump/match01_000120-000245.mp4`` holds source frames 120..244.
    Frame numbers are exact where seconds would be rounded, and zero-padding makes a folder
    listing sort in time order. Label and name go through :func:`~video_lstm.io.files.safe_name`
    (unchanged when already safe; otherwise unsafe characters become ``_``, the length is capped
    and a hash of the original is appended, so distinct labels never share a folder).

    Args:
        folder: Clip root chosen by the pipeline (e.g. ``out/clips``).
        label: Segment label.
        video_name: Output name of the source video (the folder runner uses the file name with
            its extension, e.g. ``match01.mp4``).
        start_frame: First frame.
        end_frame: One past the last frame.
        ext: File extension.

    Returns:
        The clip path (not created).
    """
    return (
        Path(folder)
        / safe_name(label, max_bytes=LABEL_MAX_BYTES)
        / f"{safe_name(video_name, max_bytes=NAME_MAX_BYTES)}_{start_frame:06d}-{end_frame:06d}{ext}"
    )


def cut_clip(
    source: FrameSource | str | Path,
    start_frame: int,
    end_frame: int,
    out_path: str | Path,
    fps: float | None = None,
    *,
    chunk_size: int = 64,
    crf: int = 20,
    preset: str = "veryfast",
    codec: str = "libx264",
) -> Path:
    """Cut source frames ``[start_frame, end_frame)`` into a new video, frame-exactly.

    Stream-copy cuts (``ffmpeg -ss -to -c copy``) can only start on a keyframe and so overshoot
    by up to a GOP; this decodes exactly the requested frames (``chunk_size`` at a time, bounded
    memory) and re-encodes them, so the clip holds ``end_frame - start_frame`` frames.

    Args:
        source: An open reader (preferred when cutting several clips from one video) or a path,
            opened with ``video_lstm.io.decode.open_video`` and closed afterwards.
        start_frame: First frame (inclusive).
        end_frame: One past the last frame.
        out_path: Output file (``.mp4`` for H.264, ``.mkv`` with ``codec="ffv1"`` for lossless).
        fps: Output frame rate; the source fps by default.
        chunk_size: Frames decoded at a time.
        crf: x264 quality (clips are kept, so a little better than the overlay default).
        preset: x264 preset.
        codec: ``"libx264"``, ``"h264_nvenc"`` or ``"ffv1"``.

    Returns:
        ``out_path``.
    """
    if isinstance(source, (str, Path)):
        from video_lstm.io.decode import open_video  # same layer; import only when needed

        with open_video(source) as reader:
            return cut_clip(
                reader,
                start_frame,
                end_frame,
                out_path,
                fps,
                chunk_size=chunk_size,
                crf=crf,
                preset=preset,
                codec=codec,
            )
    n = source.num_frames
    if not 0 <= start_frame < end_frame <= n:
        raise ValueError(
            f"{out_path}: clip frames [{start_frame}, {end_frame}) not inside [0, {n}) of the source"
        )
    even = codec == "libx264"
    w = source.width + (source.width % 2 if even else 0)
    h = source.height + (source.height % 2 if even else 0)
    with VideoWriter(
        out_path,
        fps=fps or source.fps,
        width=w,
        height=h,
        crf=crf,
        preset=preset,
        codec=codec,
    ) as vw:
        i420 = even and getattr(source, "supports_i420", False)
        for lo in range(start_frame, end_frame, chunk_size):
            idx = np.arange(lo, min(lo + chunk_size, end_frame))
            if i420:  # the decoded planes as they are: no colour conversion either way
                vw.write_i420(source.get_frames(idx, pixel_format="yuv420p"))
                continue
            frames = source.get_frames(idx)
            vw.write(pad_even(frames) if even else frames)
    return Path(out_path)
