"""Annotate a live stream (URL, webcam, growing file) as it plays: events in OUT/<stream>/.

Example:
    python tools/watch_stream.py udp://127.0.0.1:5000 model.ckpt out/ --reconnect_s 30
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["watch", *sys.argv[1:]]))
