"""Annotate every video in a folder (recursively), mirroring the tree; resumable; exits 1 on failures.

Example:
    python tools/run_pipeline.py videos/ model.pt out/ --limit 10 --dry_run true
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
