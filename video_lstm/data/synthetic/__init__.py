"""Procedural action videos for the demo and the tests (no downloads).

Modules, each importing only the ones above it:

- :mod:`~video_lstm.data.synthetic.common`: frame size, drawn counts, a sequence's checks;
- :mod:`~video_lstm.data.synthetic.objects`: the ``"objects"`` scene, a textured object that
  moves, grows or turns over a procedural background (:data:`ACTIONS`, in mirrored pairs);
  :func:`render_action` (one clip), :func:`make_action_sequence` (one untrimmed video);
- :mod:`~video_lstm.data.synthetic.camera`: the ``"camera"`` scene, a camera panning, tilting,
  zooming and rolling over real photos (:data:`CAMERA_ACTIONS`); :func:`make_camera_sequence`;
- :mod:`~video_lstm.data.synthetic.write`: datasets on disk, :func:`write_dataset` (trimmed,
  UCF101 layout) and :func:`write_untrimmed_dataset` with :class:`UntrimmedSpec`, whose defaults
  are the only ones (the function, ``video-lstm make-untrimmed`` and the demo's recipe).

Frames are RGB uint8 ``(T, H, W, 3)``; every video is a pure function of its seed.
"""

from video_lstm.data.synthetic.camera import (
    BUNDLED_SPLIT,
    CAMERA_ACTIONS,
    CAMERA_GAPS,
    CAMERA_REVERSED,
    bundled_photos,
    load_photos,
    make_camera_sequence,
    photo_pool,
    split_photos,
)
from video_lstm.data.synthetic.objects import (
    ACTIONS,
    GAPS,
    MIRRORED,
    Appearance,
    make_action_sequence,
    make_background,
    make_sprite,
    render_action,
    sample_appearance,
)
from video_lstm.data.synthetic.write import (
    UntrimmedSpec,
    make_untrimmed,
    write_dataset,
    write_untrimmed_dataset,
)

__all__ = [
    "ACTIONS",
    "BUNDLED_SPLIT",
    "CAMERA_ACTIONS",
    "CAMERA_GAPS",
    "CAMERA_REVERSED",
    "GAPS",
    "MIRRORED",
    "Appearance",
    "UntrimmedSpec",
    "bundled_photos",
    "load_photos",
    "make_action_sequence",
    "make_background",
    "make_camera_sequence",
    "make_sprite",
    "make_untrimmed",
    "photo_pool",
    "render_action",
    "sample_appearance",
    "split_photos",
    "write_dataset",
    "write_untrimmed_dataset",
]
