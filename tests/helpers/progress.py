"""What a running study's progress file says, read as ``tuner status`` reads it (a half-written file: nothing)."""

from __future__ import annotations

import json
from pathlib import Path


def ended_trials(run_dir: Path) -> int:
    """Trials of the study in ``run_dir`` that have ended, by its ``progress.json`` (0 before it exists)."""
    try:
        counts = json.loads((run_dir / "progress.json").read_text()).get("counts", {})
    except (OSError, json.JSONDecodeError):
        return 0
    return sum(n for status, n in counts.items() if status != "running")
