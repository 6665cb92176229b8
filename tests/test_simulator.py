"""The curve table and the simulated-time driver (``benchmarks/curves.py``, ``benchmarks/simulator.py``), on a tiny
generated table: replay is exact for a recorded config, a run is a function of its seed, and the service's real
ASHA scheduler and Optuna searcher run through it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.curves import META, ROW, distances, draw_configs, load_table, nearest
from benchmarks.simulator import Strategy, simulate, trial_scores
from tuner.spec import Choice, EarlyStopping, LogUniform, Param, SpaceSpec, Uniform

EPOCHS = 9
SPEC = SpaceSpec(
    name="tiny",
    report="generated",
    summary="a generated space for the simulator's tests",
    dataset="none",
    data_options={},
    trainable="trainables.mlp",
    model="none",
    metric="val_accuracy",
    mode="max",
    metrics=("val_loss", "val_accuracy"),
    max_epochs=EPOCHS,
    grace_period=1,
    params=(
        Param("lr", LogUniform(1e-4, 1e-1), "rate"),
        Param("dropout", Uniform(0.0, 0.5), "dropout"),
        Param("layers", Choice((1, 2)), "depth"),
        Param("width", Choice((8, 16)), "width of layer 2", active_if=("layers", (2,))),
    ),
    report_config={"lr": 1e-2, "dropout": 0.1, "layers": 2, "width": 16},
)


def curve(config: dict, seed: int) -> dict:
    """A config's generated curve: its final accuracy falls with the distance of log(lr) from log(1e-2)."""
    quality = 0.95 - 0.1 * abs(np.log10(config["lr"]) + 2) - 0.05 * config["dropout"] + 0.01 * seed
    epochs = np.arange(1, EPOCHS + 1)
    accuracy = quality * (1 - np.exp(-epochs / (1 + 3 * config["dropout"])))
    per_epoch = 1.0 + config["dropout"] + 0.5 * (config["layers"] == 2)
    return {"elapsed_s": list(epochs * per_epoch), "cpu_s": list(epochs * per_epoch * 0.5),
            "epochs": list(map(int, epochs)), "end_reason": "completed",
            "metrics": {"val_accuracy": list(accuracy), "val_loss": list(2 - accuracy)}}  # fmt: skip


@pytest.fixture
def table_file(tmp_path: Path) -> Path:
    configs = draw_configs(SPEC, 12, seed=0)
    meta = {"kind": META, "space": "tiny", "settings": [], "max_epochs": EPOCHS, "draw_seed": 0,
            "early_stopping": False, "data_fingerprint": "generated",
            "metrics": list(SPEC.metrics), "metric": SPEC.metric, "mode": SPEC.mode, "configs": configs}  # fmt: skip
    lines = [json.dumps(meta)]
    lines += [
        json.dumps({"kind": ROW, "config": c, "seed": s, **curve(configs[c], s)})
        for s in range(2)
        for c in range(len(configs))
    ]
    path = tmp_path / "tiny.jsonl"
    path.write_text("\n".join(lines) + '\n{"kind": "row", "conf')  # a torn last line, as an interrupted recording
    return path


def test_the_table_loads_with_the_reports_config_first_and_a_torn_line_left_out(table_file: Path):
    table = load_table(table_file)
    assert table.objectives.shape == (12, 2, EPOCHS, 2) and (table.lengths == EPOCHS).all()
    assert table.configs[0] == SPEC.report_config
    assert nearest(SPEC, table, dict(SPEC.report_config)) == (0, 0.0)


def test_distance_scales_numbers_logs_and_choices_and_counts_an_inactive_parameter_as_one():
    base = {"lr": 1e-4, "dropout": 0.0, "layers": 2, "width": 8}
    others = [{**base, "lr": 1e-1}, {**base, "dropout": 0.25}, {**base, "width": 16}, {**base, "layers": 1}]
    assert distances(SPEC, base, others) == pytest.approx([1.0, 0.5, 1.0, np.sqrt(2)])


def test_replaying_a_recorded_config_reproduces_its_recorded_curve(table_file: Path):
    table = load_table(table_file)
    run = simulate(SPEC, table, Strategy("random", "fifo"), workers=1, budget_s=40, seed=3, decision_cost=0.0)
    first = run.trials[0]  # random search takes the configs in its own order; the first one replayed in full
    c, s = first.config, first.seed
    recorded = table.curve(c, s, SPEC.metric)
    assert first.reported == EPOCHS and not first.stopped
    assert list(first.scores) == list(trial_scores(SPEC, recorded))
    assert run.timeline[0] == (table.elapsed[c, s, -1], recorded.max())  # ends at its recorded time and score


def test_a_run_is_a_function_of_its_seed(table_file: Path):
    table = load_table(table_file)
    strategy = Strategy("optuna", "asha")

    def once(seed: int):
        run = simulate(SPEC, table, strategy, workers=3, budget_s=120, seed=seed, decision_cost=0.01)
        return run.timeline, [(t.config, t.seed, t.reported) for t in run.trials]

    assert once(5) == once(5)
    assert once(5) != once(6)


def test_the_real_asha_and_optuna_objects_prune_and_learn_through_the_simulator(table_file: Path):
    table = load_table(table_file)
    run = simulate(SPEC, table, Strategy("optuna", "asha"), workers=4, budget_s=300, seed=0, decision_cost=0.0)
    assert len(run.trials) > 12 and any(t.stopped for t in run.trials)  # ASHA stopped some at a rung
    assert all(t.reported in (1, 3, EPOCHS) for t in run.trials if t.stopped)  # grace 1, reduction factor 3
    assert (run.distances >= 0).all() and (run.distances > 0).any()  # Optuna proposes configs off the table
    # no more than 4 trials at once: at any trial's start, fewer than 4 others had started and not ended
    ends = [t.start + table.elapsed[t.config, t.seed, t.reported - 1] for t in run.trials]
    for t in run.trials:
        assert sum(o.start <= t.start < e for o, e in zip(run.trials, ends, strict=True)) <= 4


def test_the_spaces_early_stopping_ends_a_replayed_trial_where_the_recorded_curve_stalls(table_file: Path):
    import dataclasses

    table = load_table(table_file)
    stalls = dataclasses.replace(SPEC, early_stopping=EarlyStopping("val_loss", "min", patience=2, min_delta=0.5))
    run = simulate(stalls, table, Strategy("random", "fifo"), workers=1, budget_s=40, seed=0, decision_cost=0.0)
    # val_loss moves by less than 0.5 over the whole curve: two epochs without improvement after the first
    assert {t.last for t in run.trials} == {3} and {t.end_reason for t in run.trials} == {"early_stopped"}
    assert {t.reported for t in run.trials[:-1]} == {3}  # the last one is cut by the budget


def test_a_strategys_settings_reach_the_services_scheduler(table_file: Path):
    from benchmarks.search_efficiency import parse_strategy

    strategy = Strategy.parse("random_asha:grace=2:rf=2", parse_strategy)
    assert (strategy.searcher, strategy.scheduler, strategy.grace, strategy.rf) == ("random", "asha", 2, 2)
    run = simulate(SPEC, load_table(table_file), strategy, workers=4, budget_s=200, seed=0, decision_cost=0.0)
    assert {t.reported for t in run.trials if t.stopped} <= {2, 4, 8} and any(t.stopped for t in run.trials)
    with pytest.raises(ValueError, match="setting 'rungs=2'"):
        Strategy.parse("random_asha:rungs=2", parse_strategy)


def test_a_recording_resumes_after_its_finished_pairs_and_refuses_another_draw(table_file: Path):
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "record_curves.py"
    module_spec = importlib.util.spec_from_file_location("record_curves", path)
    record = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(record)
    meta = json.loads(table_file.read_text().splitlines()[0])
    assert record.open_table(table_file, meta) == {(c, s) for c in range(12) for s in range(2)}
    assert table_file.read_text().endswith("}\n")  # the torn line is cut off before new lines are appended
    with pytest.raises(Exception, match="draw_seed=0, not 1"):
        record.open_table(table_file, {**meta, "draw_seed": 1})
