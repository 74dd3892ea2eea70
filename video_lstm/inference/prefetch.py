"""A video's chunks decoded ahead in a DataLoader worker process (``score_video(prefetch=N)``).

Its own module because it needs torch (``torch.utils.data``) at class definition: scoring
imports it only when prefetching, so ONNX inference without prefetch runs without torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from video_lstm.errors import VideoError
from video_lstm.io.decode import open_video

__all__ = ["ChunkStream"]


class ChunkStream(torch.utils.data.IterableDataset):
    """A video's chunks ``(start, frames)``, decoded in a DataLoader worker process.

    The worker opens the video itself (a native reader does not cross processes). A
    :class:`VideoError` is passed on as an item, so the main process re-raises it with its type
    and reason (DataLoader would turn it into a RuntimeError). The last item is the worker's
    final frame count (an int): a damaged stream can turn out shorter while it is decoded.
    """

    def __init__(self, reader: Any, chunk_size: int, step: int) -> None:
        super().__init__()
        self.path, self.backend = reader.path, reader.backend
        self.size = (reader.width, reader.height)
        self.on_error = getattr(reader, "on_error", "skip")
        self.chunk_size, self.step = chunk_size, step

    def __iter__(self) -> Iterator[Any]:
        try:
            with open_video(
                self.path, backend=self.backend, size=self.size, on_error=self.on_error
            ) as reader:
                yield from reader.iter_chunks(self.chunk_size, step=self.step)
                yield reader.num_frames
        except VideoError as exc:
            yield exc
