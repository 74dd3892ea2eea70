"""Placeholder: the decoding module is being written (issue 2)."""


class VideoReader:  # noqa: D101
    pass


def open_video(path, *, backend="auto", size=None, num_threads=0):  # noqa: D103
    raise NotImplementedError
