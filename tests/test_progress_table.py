"""The live progress table ``StudyMonitor`` prints every ``table_every`` seconds while a study runs."""

from __future__ import annotations

import pickle
import types

import pytest

import tuner.monitor.callback
import tuner.monitor.progress
from trainables.reporting import END_REASON, EPOCH, SCORE
from tuner import spaces
from tuner.errors import TunerError
from tuner.internals.ray_tune import median_rule_results
from tuner.monitor import StudyMonitor, TrialLedger, TrialOutcome, restored_monitor
from tuner.schema import PHASE_TAG, SPACE_TAG
from tuner.search import PruneLog


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(tuner.monitor.progress, "time", types.SimpleNamespace(monotonic=fake))
    return fake


def fake_trial(n: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        trial_id=f"t{n:03d}", config={"lr": 0.001 * n}, checkpoint=None, error_file=None, error_msg=None
    )


def make_monitor(clock: Clock, table_every: float | None = 30.0, total: int = 20):
    lines: list[str] = []
    monitor = StudyMonitor(
        spaces.get("steel_binary"), None, PruneLog(), total, lines.append, started=clock.now, table_every=table_every
    )
    return monitor, lines


def result(epoch: int, val_accuracy: float, score: float, node: str = "10.0.0.5", **extra) -> dict:
    return {EPOCH: epoch, "val_accuracy": val_accuracy, SCORE: score, "node_ip": node, **extra}


def step(monitor: StudyMonitor) -> None:
    monitor.on_step_end(iteration=0, trials=[])


def tables(lines: list[str]) -> list[str]:
    return [line for line in lines if "progress after" in line]


def test_the_table_appears_after_the_interval_with_counts_best_and_running_rows(clock):
    monitor, lines = make_monitor(clock)
    step(monitor)  # the loop's first step starts the timer
    trials = [fake_trial(n) for n in range(1, 4)]
    for trial in trials:
        monitor.on_trial_start(0, [], trial)
    monitor.on_trial_result(0, [], trials[0], result(1, 0.70, 0.70))
    monitor.on_trial_result(0, [], trials[0], result(2, 0.81, 0.81))
    monitor.on_trial_result(0, [], trials[0], result(3, 0.79, 0.81, **{END_REASON: "completed"}))
    monitor.on_trial_complete(0, [], trials[0])
    monitor.on_trial_result(0, [], trials[1], result(4, 0.6512, 0.66, node="10.0.0.7"))
    monitor.on_trial_result(0, [], trials[2], {EPOCH: 1, SCORE: -1e12})  # the penalty: no score yet
    clock.now += 29.0
    step(monitor)
    assert not tables(lines), "no table before the interval"
    clock.now += 1.5
    step(monitor)
    assert len(tables(lines)) == 1
    table = lines[-1].splitlines()
    assert table[0] == (
        "[   30.5s] progress after 0m30s: 1/20 done (1 completed), 2 running, 17 not started | "
        "best val_accuracy=0.8100 (trial 1)"
    )
    assert table[1].split() == ["trial", "epochs", "val_accuracy", "best", "node", "restarts"]
    assert table[2].split() == ["2", "4", "0.6512", "0.6600", "10.0.0.7", "0"]
    assert table[3].split() == ["3", "1", "-", "-", "-", "0"]
    assert len(table) == 4
    clock.now += 10.0
    step(monitor)
    assert len(tables(lines)) == 1, "the next table waits a full interval"
    clock.now += 20.0
    step(monitor)
    assert len(tables(lines)) == 2, "trials still running: a table every interval"


def test_no_table_when_nothing_changed_and_nothing_runs(clock):
    monitor, lines = make_monitor(clock, table_every=10.0, total=1)
    step(monitor)
    clock.now += 60.0
    step(monitor)
    assert not tables(lines), "nothing started yet"
    trial = fake_trial(1)
    monitor.on_trial_start(0, [], trial)
    monitor.on_trial_result(0, [], trial, result(1, 0.5, 0.5, **{END_REASON: "early_stopped"}))
    monitor.on_trial_complete(0, [], trial)
    clock.now += 10.0
    step(monitor)
    assert len(tables(lines)) == 1 and "1/1 done (1 early_stopped), 0 running, 0 not started" in lines[-1]
    assert "trial  epochs" not in lines[-1], "no header without running trials"
    for _ in range(3):
        clock.now += 10.0
        step(monitor)
    assert len(tables(lines)) == 1, "nothing changed and nothing runs: no repeat"


def test_running_rows_are_capped(clock):
    monitor, lines = make_monitor(clock, table_every=5.0, total=30)
    step(monitor)
    for n in range(1, 14):
        trial = fake_trial(n)
        monitor.on_trial_start(0, [], trial)
        monitor.on_trial_result(0, [], trial, result(n, 0.5 + n / 100, 0.5 + n / 100))
    clock.now += 5.0
    step(monitor)
    table = lines[-1].splitlines()
    assert "0/30 done, 13 running, 17 not started | best -" in table[0]
    assert [row.split()[0] for row in table[2:12]] == [str(n) for n in range(1, 11)]
    assert table[12] == "  ... and 3 more running" and len(table) == 13


@pytest.mark.parametrize("every", [0, 0.0, None])
def test_no_table_when_disabled(clock, every):
    monitor, lines = make_monitor(clock, table_every=every)
    trial = fake_trial(1)
    monitor.on_trial_start(0, [], trial)
    for epoch in range(1, 5):
        monitor.on_trial_result(0, [], trial, result(epoch, 0.6, 0.6))
        clock.now += 1000.0
        step(monitor)
    assert not tables(lines)


def test_a_pickled_and_restored_monitor_keeps_printing_tables(clock):
    monitor, lines = make_monitor(clock, table_every=10.0)
    step(monitor)
    trial = fake_trial(1)
    monitor.on_trial_start(0, [], trial)
    monitor.on_trial_result(0, [], trial, result(2, 0.75, 0.75))
    restored = pickle.loads(pickle.dumps(monitor))
    restored.set_state(monitor.get_state())
    restored_lines: list[str] = []
    restored.progress.echo = restored_lines.append
    clock.now = 5.0  # another process: its monotonic clock reads something else entirely
    restored.progress.started = 0.0
    step(restored)
    clock.now += 9.0
    step(restored)
    assert not tables(restored_lines)
    clock.now += 1.0
    step(restored)
    assert len(tables(restored_lines)) == 1
    assert restored_lines[-1].splitlines()[2].split() == ["1", "2", "0.7500", "0.7500", "10.0.0.5", "0"]
    restored.on_trial_start(0, [], trial)  # the trial runs again after the resume
    clock.now += 10.0
    step(restored)
    assert restored_lines[-1].splitlines()[2].split()[-1] == "1"


def test_a_monitor_from_an_older_snapshot_has_no_table_and_does_not_fail(clock):
    """A study an older tuner started: its tuner.pkl holds a monitor that kept its trials itself, and had no
    tables yet; unpickled, its trials move into a ledger."""
    _, lines = make_monitor(clock)
    state = {"spec": spaces.get("steel_binary"), "tracker": None, "prune_log": PruneLog(), "total": 20,
             "echo": print, "outcomes": {}, "started": clock.now, "first_trial_after": None, "progress_path": None,
             "restored": False}  # fmt: skip
    old = StudyMonitor.__new__(StudyMonitor)
    old.__setstate__(state)
    old.progress.echo = lines.append
    trial = fake_trial(1)
    old.on_trial_start(0, [], trial)
    clock.now += 100.0
    step(old)
    assert not tables(lines)
    assert old.progress.table().startswith("[  100.0s] progress after 1m40s: 0/20 done, 1 running")


def test_the_snapshot_state_of_an_older_monitor_restores_into_the_ledger():
    monitor = StudyMonitor(spaces.get("steel_binary"), None, PruneLog(), 10, lambda line: None)
    monitor.set_state(
        {
            "outcomes": [{"trial_id": "t001", "number": 1, "config": {}, "status": "pruned"}],
            "first_trial_after": 1.5,
            "pruned": {"t001": 3},
        }
    )
    assert monitor.ledger.restored and monitor.ledger.first_trial_after == 1.5
    assert monitor.ledger.outcomes["t001"].status == "pruned" and monitor.ledger.prune_log.pruned == {"t001": 3}


def test_negative_progress_every_is_a_one_line_error(tmp_path, capsys):
    from tuner.cli import main

    results = tmp_path / "results"
    assert main(["run", "steel_binary", "--progress-every", "-5", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --progress-every must be 0 (no table) or a positive number of seconds, got -5"]
    assert not results.exists()


def test_the_progress_file_is_rewritten_at_most_once_a_second_and_its_last_state_always_lands(clock, tmp_path):
    import json

    path = tmp_path / "progress.json"
    monitor = StudyMonitor(
        spaces.get("steel_binary"), None, PruneLog(), 3, lambda line: None, started=clock.now, progress_path=path
    )
    first, second = fake_trial(1), fake_trial(2)
    monitor.on_trial_start(0, [], first)
    assert [t["trial"] for t in json.loads(path.read_text())["trials"]] == [1], "the first write is immediate"
    monitor.on_trial_start(0, [], second)
    clock.now += tuner.monitor.progress.PROGRESS_WRITE_S / 2
    step(monitor)
    assert len(json.loads(path.read_text())["trials"]) == 1, "held back: written less than a second ago"
    clock.now += tuner.monitor.progress.PROGRESS_WRITE_S / 2
    step(monitor)
    assert len(json.loads(path.read_text())["trials"]) == 2, "a held-back write lands at a later step"
    monitor.on_trial_result(0, [], first, result(1, 0.8, 0.8, **{END_REASON: "completed"}))
    monitor.on_trial_complete(0, [], first)
    monitor.on_experiment_end(trials=[])
    statuses = {t["trial"]: t["status"] for t in json.loads(path.read_text())["trials"]}
    assert statuses == {1: "completed", 2: "running"}, "the study's end writes its last state at once"


def test_asha_rungs_travel_in_the_monitor_state_to_the_scheduler_of_a_resumed_study():
    """Tune's experiment snapshot leaves the scheduler out; the study's tuner.pkl holds the monitor and the scheduler
    in one pickle, so the restored monitor puts the saved rungs back into the scheduler the resumed study uses."""
    import ray.cloudpickle as cloudpickle
    from ray.tune.schedulers import TrialScheduler

    from tuner.search import build_scheduler

    spec = spaces.get("steel_binary")
    prune_log = PruneLog()
    scheduler = build_scheduler(spec, "asha", prune_log)
    scheduler.set_search_properties(SCORE, spec.mode)
    monitor = StudyMonitor(spec, None, prune_log, 10, lambda line: None, scheduler=scheduler)
    at_start = cloudpickle.dumps({"callbacks": [monitor], "scheduler": scheduler})  # what tuner.pkl holds

    grace = spec.grace_period  # ASHA's first rung

    def report(sched, n: int, score: float) -> str:
        trial = fake_trial(n)
        sched.on_trial_add(None, trial)
        return sched.on_trial_result(None, trial, {EPOCH: grace, SCORE: score})

    for n, score in enumerate([0.7, 0.8, 0.9], start=1):  # each above the cutoff of the ones before
        assert report(scheduler, n, score) == TrialScheduler.CONTINUE
    snapshot = cloudpickle.dumps(monitor.get_state())  # Tune's experiment snapshot of the callback

    restored = cloudpickle.loads(at_start)
    fresh_monitor, fresh_scheduler = restored["callbacks"][0], restored["scheduler"]
    assert fresh_monitor.scheduler is fresh_scheduler
    assert report(fresh_scheduler, 9, 0.1) == TrialScheduler.CONTINUE, "an empty rung stops nothing"
    restored = cloudpickle.loads(at_start)
    resumed_monitor, resumed_scheduler = restored["callbacks"][0], restored["scheduler"]
    resumed_monitor.set_state(cloudpickle.loads(snapshot))
    # with the saved rung (0.7, 0.8, 0.9), a trial far below it is stopped at the grace period
    assert report(resumed_scheduler, 4, 0.1) == TrialScheduler.STOP
    assert report(scheduler, 4, 0.1) == TrialScheduler.STOP, "the same decision as without the interruption"


class HashableTrial:
    """Tune's schedulers key trials by the Trial object: a stand-in that can be a dict key."""

    def __init__(self, n: int):
        self.trial_id = f"t{n:03d}"


class NoLiveTrials:
    def get_live_trials(self):
        return []


def test_median_rule_results_travel_by_trial_id_to_the_scheduler_of_a_resumed_study():
    """The median rule keys results by Trial objects, which a resumed study has anew: they travel by trial id, the
    resumed rule compares new trials with the ones that ran before, and a trial running again gets its own results
    back instead of being compared with itself."""
    import ray.cloudpickle as cloudpickle
    from ray.tune.schedulers import TrialScheduler

    from tuner.search import build_scheduler

    spec = spaces.get("steel_binary")
    prune_log = PruneLog()
    scheduler = build_scheduler(spec, "median", prune_log)
    scheduler.set_search_properties(SCORE, spec.mode)
    monitor = StudyMonitor(spec, None, prune_log, 10, lambda line: None, scheduler=scheduler)
    at_start = cloudpickle.dumps({"callbacks": [monitor], "scheduler": scheduler})
    grace, controller = spec.grace_period, NoLiveTrials()

    def run(sched, trial, score: float, epochs) -> str:
        decision = TrialScheduler.CONTINUE
        for epoch in epochs:
            decision = sched.on_trial_result(controller, trial, {EPOCH: epoch, SCORE: score, "config": {}})
        return decision

    for n in (1, 2, 3):
        trial = HashableTrial(n)
        assert run(scheduler, trial, 0.9, range(1, grace + 2)) == TrialScheduler.CONTINUE
        scheduler.on_trial_complete(controller, trial, {EPOCH: grace + 1, SCORE: 0.9})
    running = HashableTrial(4)
    run(scheduler, running, 0.9, range(1, grace))  # below the grace period: nothing compared yet
    snapshot = cloudpickle.dumps(monitor.get_state())

    restored = cloudpickle.loads(at_start)
    fresh_scheduler = restored["scheduler"]
    assert run(fresh_scheduler, HashableTrial(9), 0.1, range(1, grace + 1)) == TrialScheduler.CONTINUE, (
        "with no completed trials the rule stops nothing"
    )
    restored = cloudpickle.loads(at_start)
    resumed_monitor, resumed_scheduler = restored["callbacks"][0], restored["scheduler"]
    resumed_monitor.set_state(cloudpickle.loads(snapshot))
    assert run(resumed_scheduler, HashableTrial(9), 0.1, range(1, grace + 1)) == TrialScheduler.STOP
    assert run(scheduler, HashableTrial(9), 0.1, range(1, grace + 1)) == TrialScheduler.STOP, "as uninterrupted"
    again = HashableTrial(4)  # the same trial, a new object in the resumed study
    assert run(resumed_scheduler, again, 0.9, [grace]) == TrialScheduler.CONTINUE
    assert "t004" not in median_rule_results(resumed_scheduler)
    assert [r[EPOCH] for r in median_rule_results(resumed_scheduler)[again]] == [*range(1, grace), grace]


def test_superseded_checkpoints_go_only_once_two_newer_snapshots_exist(tmp_path):
    """The snapshot being saved when the driver dies, and the one before it (its upload may still run), may never
    reach storage: the one before those must still find the checkpoints it points at. After the study only each
    trial's latest checkpoint is kept."""
    from ray import tune

    monitor = StudyMonitor(spaces.get("steel_binary"), None, PruneLog(), 2, lambda line: None)
    trial = fake_trial(1)
    folders = []

    def checkpoint() -> None:
        folder = tmp_path / f"checkpoint_{len(folders):06d}"
        folder.mkdir()
        folders.append(folder)
        monitor.on_checkpoint(0, [], trial, tune.Checkpoint.from_directory(str(folder)))

    def existing() -> list[int]:
        return [i for i, f in enumerate(folders) if f.exists()]

    checkpoint()  # 0
    monitor.get_state()  # snapshot A points at 0
    checkpoint()  # 1
    checkpoint()  # 2
    monitor.get_state()  # snapshot B points at 2
    checkpoint()  # 3
    monitor.get_state()  # snapshot C points at 3; B and C may be incomplete: A's checkpoint stays
    assert existing() == [0, 1, 2, 3]
    checkpoint()  # 4
    monitor.get_state()  # snapshot D: B is safe now, so checkpoints older than B's (2) go
    assert existing() == [2, 3, 4]
    monitor.after_study()
    assert existing() == [4], "after the study, the latest checkpoint only"


def test_a_restored_monitor_older_than_the_restored_trials_takes_their_ends_from_tune():
    """Tune writes a snapshot's trials, then its callbacks' state: a driver killed in between leaves the monitor's
    state older than the trials. The resumed monitor takes what happened in between from Tune's trials, so no
    trial stays 'running' (its MLflow run open) when Tune will not run it again."""
    from trainables.reporting import BEST_EPOCH

    spec = spaces.get("steel_binary")
    monitor = StudyMonitor(spec, None, PruneLog(), 10, lambda line: None)
    saved = TrialLedger(spec, 10)
    saved.outcomes = {
        o.trial_id: o
        for o in [
            TrialOutcome("t001", 1, {}),
            TrialOutcome("t002", 2, {}),
            TrialOutcome("t003", 3, {}),
            TrialOutcome("t009", 4, {}),
            TrialOutcome("t004", 5, {}, status="completed", score=0.7),
        ]
    }
    monitor.set_state({"ledger": saved})

    def trial(n: int, status: str, **last):
        checkpoint = types.SimpleNamespace(path=f"/study/trial_t{n:03d}/checkpoint_000002")
        return types.SimpleNamespace(
            trial_id=f"t{n:03d}",
            status=status,
            last_result=last,
            config={"lr": 0.01},
            checkpoint=checkpoint,
            error_file=None,
            error_msg="device lost",
        )

    monitor.ledger.adopt_trials(
        [
            trial(1, "TERMINATED", **{EPOCH: 7, SCORE: 0.81, BEST_EPOCH: 5, END_REASON: "completed"}),
            trial(2, "TERMINATED", **{EPOCH: 3, SCORE: 0.6, BEST_EPOCH: 3}),  # the scheduler stopped it
            trial(3, "PENDING", **{EPOCH: 4, SCORE: 0.7}),  # was running: Tune runs it again
            trial(4, "TERMINATED", **{EPOCH: 9, SCORE: 0.7, END_REASON: "completed"}),
            trial(5, "PENDING", **{EPOCH: 2, SCORE: 0.5}),  # started after the monitor's state: runs again
            trial(6, "PENDING"),  # never reported: starts as a new trial
            trial(7, "TERMINATED", **{EPOCH: 4, SCORE: 0.75, BEST_EPOCH: 2, END_REASON: "early_stopped"}),
            trial(8, "ERROR", **{EPOCH: 1, SCORE: 0.1}),
        ]
    )
    got = {tid: (o.number, o.status, o.score) for tid, o in monitor.ledger.outcomes.items()}
    assert got == {
        "t001": (1, "completed", 0.81),
        "t002": (2, "pruned", 0.6),
        "t003": (3, "running", None),
        "t004": (5, "completed", 0.7),
        "t005": (6, "running", None),
        "t007": (7, "early_stopped", 0.75),
        "t008": (8, "failed", 0.1),
    }
    assert monitor.ledger.outcomes["t002"].message == "stopped by the scheduler after epoch 3"
    assert monitor.ledger.outcomes["t001"].checkpoint_path == "/study/trial_t001/checkpoint_000002"
    assert monitor.ledger.outcomes["t001"].best_epoch == 5 and monitor.ledger.outcomes["t007"].epochs == 4


class RecordingTracker:
    """Stands in for the driver's MLflow writer: what the monitor asked of it."""

    error = None
    tracking_uri = "sqlite:///nowhere.db"

    def __init__(self):
        self.calls: list[tuple] = []

    def reconcile(self, finished, starts):
        self.calls.append(("reconcile", finished, starts))

    def end_child(self, trial_id, status, metrics, tags):
        self.calls.append(("end", trial_id, status))


def restored_trial(n: int, status: str, **last) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        trial_id=f"t{n:03d}",
        status=status,
        last_result=last,
        config={},
        checkpoint=None,
        error_file=None,
        error_msg=None,
    )


def test_an_attached_monitor_resumes_at_tunes_first_step_and_says_what_runs_again():
    """The driver attaches its MLflow writer and printer before ``tuner.fit()``; at Tune's first loop step (its
    restored trials exist then) the monitor takes their ends, makes MLflow agree, and says what runs again."""
    spec = spaces.get("steel_binary")
    monitor = StudyMonitor(spec, None, PruneLog(), 4, lambda line: None)
    saved = TrialLedger(spec, 4)
    saved.outcomes = {"t001": TrialOutcome("t001", 1, {}), "t002": TrialOutcome("t002", 2, {})}
    monitor.set_state({"ledger": saved})  # Tune, from the snapshot
    tracker, lines = RecordingTracker(), []
    monitor.attach(tracker, lines.append, 0.0)
    assert not tracker.calls and not lines, "nothing before Tune's loop runs"
    trials = [
        restored_trial(1, "TERMINATED", **{EPOCH: 5, SCORE: 0.8, END_REASON: "completed"}),
        restored_trial(2, "PENDING", **{EPOCH: 2, SCORE: 0.6}),
    ]
    monitor.on_step_begin(iteration=0, trials=trials)
    assert lines == ["resumed: 1 trial(s) already ended, 1 to run again, 2 not started"]
    child = {SPACE_TAG: "steel_binary", PHASE_TAG: "search"}
    assert tracker.calls == [
        (
            "reconcile",
            {"t001": True, "t002": False},
            {"t001": ("trial-001", {}, child), "t002": ("trial-002", {}, child)},
        ),
        ("end", "t001", "completed"),
    ]
    monitor.on_step_begin(iteration=1, trials=trials)
    assert len(lines) == 1 and len(tracker.calls) == 2, "once"


def test_an_attached_monitor_whose_state_tune_did_not_restore_stops_the_study():
    monitor = StudyMonitor(spaces.get("steel_binary"), None, PruneLog(), 4, lambda line: None)
    monitor.restored_from = "/results/steel_binary/run/ray"
    monitor.attach(None, lambda line: None, 0.0)
    with pytest.raises(TunerError, match="could not restore the study's state from /results/steel_binary/run/ray"):
        monitor.on_step_begin(iteration=0, trials=[])


def test_restored_monitor_finds_the_monitor_in_the_restored_run_config(monkeypatch):
    monitor = StudyMonitor(spaces.get("steel_binary"), None, PruneLog(), 4, lambda line: None)
    # How the run config comes out of a restored Tuner is the adapter's (tests/test_internals.py covers it).
    run_configs = {}
    monkeypatch.setattr(tuner.monitor.callback, "restored_run_config", lambda restored: run_configs[id(restored)])

    def restored_tuner(callbacks):
        restored = object()
        run_configs[id(restored)] = types.SimpleNamespace(
            callbacks=callbacks, storage_path="/shared/steel_binary/run", name="ray"
        )
        return restored

    assert restored_monitor(restored_tuner([object(), monitor])) is monitor
    assert monitor.restored_from == "/shared/steel_binary/run/ray"
    with pytest.raises(TunerError, match="restored no tuner monitor from /shared/steel_binary/run/ray"):
        restored_monitor(restored_tuner([]))


def test_the_pickled_monitor_leaves_this_drivers_mlflow_writer_and_resume_behind():
    monitor = StudyMonitor(spaces.get("steel_binary"), RecordingTracker(), PruneLog(), 4, print)
    monitor.attach(RecordingTracker(), lambda line: None, 0.0)
    restored = pickle.loads(pickle.dumps(monitor))
    assert restored.tracker is None and restored.progress.echo is print
    restored.on_step_begin(iteration=0, trials=[])  # no resume work: its driver has not attached it
    assert restored.ledger is restored.progress.ledger
