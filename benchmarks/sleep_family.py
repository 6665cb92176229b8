"""A model-free family for measuring the service itself: each epoch sleeps, then reports a known score.

The score is a smooth function of the config (best at ``x = 0.7``), so searchers have something to find and
tests can predict the best trial; ``peak_epoch`` makes it fall after that epoch. ``fail_above`` makes trials
raise and ``diverge_above`` makes them report NaN, to exercise the failed and diverged paths without a model.
Every epoch also reports when the trial started and when that epoch ended (``STARTED_AT``, ``ENDED_AT``: epoch
seconds of this host's clock), so tests can tell which trials ran at the same time.

Ray worker processes import it by name (``benchmarks.sleep_family``), so the project root must be on their
path: the driver's working directory is (Ray adds it), and the session's Ray and the tests' subprocesses also set
PYTHONPATH to it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainables.reporting import EpochReporter, TrialContext

SCORE_METRIC = "val_score"
STARTED_AT = "started_at"
ENDED_AT = "ended_at"


def score_of(x: float, epoch: int) -> float:
    return 1.0 - (x - 0.7) ** 2 - 0.5 / (epoch + 1)


def train(config: dict[str, Any], data: Any, ctx: TrialContext) -> None:
    started = time.time()
    x = float(config["x"])
    reporter = EpochReporter(ctx)
    save = (lambda path: path.write_text(f"{x}")) if ctx.fixed.get("checkpoint", True) else None
    # With checkpoints, a trial continues from its latest one: its epoch is all the state it has.
    save_state = (lambda path: path.write_text("{}")) if save else None
    first = reporter.restore(lambda path: None) if save else 1
    for epoch in range(first, ctx.max_epochs + 1):
        time.sleep(float(ctx.fixed.get("sleep_s", 0.0)))
        if x > ctx.fixed.get("fail_above", 2.0):
            raise RuntimeError(f"x={x:.3f} is above fail_above={ctx.fixed['fail_above']}")
        # A config can be lucky with one seed: with the study's seed 0, x == lucky_x scores 0.5 more.
        luck = 0.5 if x == ctx.fixed.get("lucky_x") and ctx.seed == 0 else 0.0
        # After ``peak_epoch`` the score falls: a trial's last epoch is then not its best (no new weights saved).
        past_peak = max(0, epoch - ctx.fixed.get("peak_epoch", epoch))
        score = score_of(x, epoch) + luck - 0.1 * past_peak
        loss = float("nan") if x > ctx.fixed.get("diverge_above", 2.0) else 1.0 - score
        times = {STARTED_AT: started, ENDED_AT: time.time()}
        if reporter.epoch(epoch, {"val_loss": loss, SCORE_METRIC: score, **times}, save, save_state):
            return


def evaluate(
    config: dict[str, Any], data: Any, ctx: TrialContext, weights: Path, split: str = "test"
) -> dict[str, float]:
    """The known score of the config after the last epoch (the family has no data to score; a space with a test
    split would call this on the best trial)."""
    return {f"{split}_score": score_of(float(config["x"]), ctx.max_epochs)}
