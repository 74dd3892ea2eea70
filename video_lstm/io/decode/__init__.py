"""Open a video and read frames by index, exactly the frames FFmpeg shows: decord where it is
right, PyAV everywhere else.

**Frame index.** Frame ``i`` is the ``i``-th frame that ``ffmpeg -i F -map 0:v -f null -``
decodes: edit lists honoured (packets an MP4 edit list discards are not frames), display
rotation applied (as ffmpeg's autorotate does), frames a damaged stream loses not counted.
Indices may be negative, Python style; anything outside ``[-num_frames, num_frames)`` raises
``FrameIndexError``.

**How.** Every file is first probed with PyAV: the video packets are demuxed (no decoding, what
``ffprobe -count_packets`` does) and the first frame is decoded (pixel format, display
rotation). From the packets the reader *predicts* the index: the shown (not discarded)
packets in presentation-timestamp order. The prediction is trusted where timestamps are
presentation times (MP4/MOV, Matroska/WebM, MPEG-PS/TS, Ogg, FLV); elsewhere (AVI, whose
timestamps are decode order, so B-frames come out "1, 2, 3, 5, 4"), or when timestamps are
missing or repeat, or the container's index is damaged, the index is *measured* by one full
decode pass at open (cached per file for the process).

PyAV identifies every decoded frame by the packet it came from (the packet's key travels
through the decoder's reordering as ``opaque``), never by the frame's own pts. Decoding from
the start, the ``k``-th frame out of the decoder *is* frame ``k`` (that is what ffmpeg counts);
a read that starts at the beginning checks the predicted index against this count as it goes,
and if a damaged stream loses frames, the index is re-measured (``on_error="skip"``) or the
file is refused (``on_error="raise"``). Random access seeks to the last keyframe at or before
the target and decodes forward; after a seek, a packet is trusted only where its size is the
size the probe saw under its key (an MPEG program stream's parser, restarted mid-frame, shifts
the timestamps of the keyframe it lands on).

**decord** (the fastest random access) is used by ``backend="auto"`` only where its index is
the same: MP4/MOV and Matroska/WebM, no discarded packets, no rotation, 8-bit 4:2:0 at an even
size, a consistent container index (decord reads the header's count and can hang in native
code decoding past the real end, dmlc/decord#373), and its resize gives the right size (it
returns mis-sized buffers for some widths). A decord error on read falls back to PyAV, and so
does a decord whose last frame is a copy of the one before when FFmpeg decodes fewer frames
(a stream damaged inside ``mdat`` with an intact index: decord pads it to the header's count).
``backend="decord"`` on a file it cannot read frame-exactly raises ``BackendUnavailableError``.

**Colour.** Both backends convert with FFmpeg's swscale and give the same pixels on 8-bit
4:2:0 at even sizes (what decord is used for); PyAV converts with bicubic chroma, as the ffmpeg
CLI does. Against the ffmpeg 9 CLI: identical on 8-bit 4:2:0/4:2:2/4:4:4, full and limited
range, BT.601 and BT.709 at even sizes; on 10-bit and odd-sized 4:2:0 the swscale versions
differ by at most 2 levels on average (tested in ``tests/test_decode_corpus.py``).

**Resize** happens inside the decoder. ``size=(w, h)`` is used as is; ``size=s`` (an int) sets
the short side to ``s`` and scales the long side to keep the aspect ratio, rounded to the
nearest even number. Sizes are those of the displayed (rotated) frame. Resized frames are not
bit-identical between backends (decord scales in its own filter graph; PyAV bilinear): about
1 level apart on average.

**Damaged streams** (``on_error``): ``"skip"`` (default) keeps the frames FFmpeg decodes and
reports how many were lost (``frames_lost``); ``"raise"`` refuses a file that loses any frame
with ``CorruptVideoError``.

Example:
    >>> with open_video("clip.mp4", size=224) as video:
    ...     clip = video.get_frames([0, 2, 4])  # 640x480 source: (3, 224, 298, 3) uint8
    ...     for start, frames in video.iter_chunks(64):
    ...         ...

**Layout.** ``source`` (the :class:`FrameSource` protocol every backend returns,
:class:`DecodeOptions`, :class:`IndexedSource`), ``probe`` (the PyAV packet demux), ``index``
(the frame index and the per-process probe cache), ``pyav`` and ``decord_source`` (the two
built-in sources), ``reader`` (:class:`VideoReader` and the backend table:
:func:`register_backend`, :func:`open_video`). A new backend is one file: see
``docs/EXTENDING.md``, "Decoder backends".
"""

from video_lstm.io.decode.probe import Probe
from video_lstm.io.decode.reader import (
    Backend,
    VideoReader,
    get_backend,
    list_backends,
    open_video,
    register_backend,
)
from video_lstm.io.decode.source import (
    ON_ERROR,
    DecodeOptions,
    FrameSource,
    IndexedSource,
    output_size,
)
from video_lstm.io.formats import VIDEO_EXTENSIONS

__all__ = [
    "ON_ERROR",
    "VIDEO_EXTENSIONS",
    "Backend",
    "DecodeOptions",
    "FrameSource",
    "IndexedSource",
    "Probe",
    "VideoReader",
    "get_backend",
    "list_backends",
    "open_video",
    "output_size",
    "register_backend",
]
