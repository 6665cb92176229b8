"""A quick check of __NAME__ without Ray: the loader, one short trial through the family, its checkpoint scored and
predicted. Run it with ``python -m pytest`` in this folder."""

from pathlib import Path

import data
import family
import numpy as np
from space import SPEC

from tuner import TrialContext


def test_one_trial_reports_every_epoch_and_its_weights_predict(tmp_path: Path):
    loaded = data.load(None, SPEC.data_options, tmp_path)
    assert loaded.synthetic and set(loaded.splits) == {"train", "val", "test"}
    rows = []
    ctx = TrialContext(
        metric=SPEC.metric,
        mode=SPEC.mode,
        max_epochs=2,
        fixed=SPEC.fixed,
        seed=0,
        report=lambda row, checkpoint: rows.append((row, checkpoint)),
    )
    config = SPEC.active_config(SPEC.report_config)
    family.train(config, loaded, ctx)
    assert [row["epoch"] for row, _ in rows] == [1, 2]
    checkpoint = next(c for _, c in reversed(rows) if c is not None)
    figures = family.evaluate(config, loaded, ctx, checkpoint / "model.pt")
    state = family.inference_state(config, loaded, ctx)
    predicted = family.predict(config, state, checkpoint / "model.pt", loaded.split("test")["x"])
    assert figures["test_accuracy"] == np.mean(predicted == loaded.split("test")["y"])
