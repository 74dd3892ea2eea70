"""Annotate one video: segments (JSON/CSV/SRT/VTT), an annotated H.264 video, labelled clips.

Example:
    python tools/annotate_video.py match.mp4 model.pt out/ --threshold 0.6 --outputs '[json,csv,video]'
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["annotate", *sys.argv[1:]]))
