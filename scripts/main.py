"""The README's main job: the default experiment, end to end.

Trains the agents of ``configs/experiments/default.yaml`` (the SplitPlace
bandit and the decision-aware agent) briefly on the ``splitplace`` scenario,
evaluates them beside two baselines on held-out seeds and the held-out test
traces, and prints the table.  Checkpoints, the tables (CSV + Markdown) and
the offline W&B runs go to ``runs/default/`` unless ``output_dir=...`` is
given as an override.

Usage: ``python scripts/main.py [key.sub=value ...]`` (overrides as in train.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))

import evaluate  # noqa: E402
import train  # noqa: E402

DEFAULT_EXPERIMENT = SCRIPTS.parent / "configs" / "experiments" / "default.yaml"


def main(argv: list[str] | None = None) -> None:
    overrides = list(sys.argv[1:] if argv is None else argv)
    train.main(["--config", str(DEFAULT_EXPERIMENT), *overrides])
    evaluate.main(["--config", str(DEFAULT_EXPERIMENT), *overrides])


if __name__ == "__main__":
    main()
