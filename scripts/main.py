"""The README's main job.

Until the environment and agents exist this prints the table of shipped model
profiles; see the README for what it runs now.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--list"]
    runpy.run_path(str(Path(__file__).with_name("profile_models.py")), run_name="__main__")
