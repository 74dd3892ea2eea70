"""Annotate every video in a folder (recursively), mirroring the tree; resumable; exits 1 on failures.

Example:
    python tools/run_pipeline.py videos/ model.pt out/ --limit 10 --dry_run true
"""

from __future__ import annotations

import sys

from jsonargparse import CLI

from pipelines.batch import run_folder


def main(argv: list[str] | None = None) -> int:
    summary = CLI(run_folder, args=argv, as_positional=True)
    print(summary.format())
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
