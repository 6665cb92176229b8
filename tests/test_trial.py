"""``tuner.trial.run_trial`` without Ray (unit tests; Tune's reporting and CUDA are faked here).

What a trial does at its end matters on GPUs: with reused actors the next trial runs in the same process, so a
trial stopped by the scheduler (Tune ends its thread with SystemExit inside ``tune.report``) or one that raises
must hand its cached GPU memory back first. And an exception in the model code is the trial's failed end, not a
worker crash for Tune to retry.
"""

from __future__ import annotations

import dataclasses
import sys
import types

import pytest
import torch

import tuner.trial as trial_module
from benchmarks.sleep_space import sleep_spec
from trainables.reporting import END_MESSAGE, END_REASON, EPOCH, SCORE, EpochReporter


@pytest.fixture
def fake_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    return calls


@pytest.fixture
def reports(monkeypatch):
    rows = []
    monkeypatch.setattr(trial_module, "_tune_report", lambda row, checkpoint_dir: rows.append(row))
    return rows


def _family(monkeypatch, train) -> str:
    module = types.ModuleType("trainables.fake_family")
    module.train = train
    module.evaluate = lambda config, data, ctx, weights, split="test": {}  # a family has both (trainables.family)
    monkeypatch.setitem(sys.modules, "trainables.fake_family", module)
    return "trainables.fake_family"


def _run(monkeypatch, train):
    spec = dataclasses.replace(sleep_spec(max_epochs=3), trainable=_family(monkeypatch, train))
    trial_module.run_trial({"x": 0.5}, data=None, spec=spec, seed=0, threads=1, gpus=0.5)


def test_a_trial_stopped_by_the_scheduler_releases_gpu_memory_and_stops(monkeypatch, fake_cuda, reports):
    def train(config, data, ctx):
        EpochReporter(ctx).epoch(1, {"val_loss": 0.5, "val_score": 0.5}, None)
        raise SystemExit(0)  # what Tune's report does when the scheduler stopped the trial

    with pytest.raises(SystemExit):
        _run(monkeypatch, train)
    assert fake_cuda == ["empty_cache"]
    assert len(reports) == 1 and reports[0][END_REASON] == ""  # no made-up end: the scheduler's stop stands


def test_an_exception_is_the_trials_failed_end_with_its_traceback(monkeypatch, fake_cuda, reports):
    def train(config, data, ctx):
        reporter = EpochReporter(ctx)
        reporter.epoch(1, {"val_loss": 0.5, "val_score": 0.5}, None)
        reporter.epoch(2, {"val_loss": 0.4, "val_score": 0.6}, None)
        raise ValueError("shapes (3,) and (4,) do not match")

    _run(monkeypatch, train)  # returns: Tune sees a finished trial, which it does not retry
    last = reports[-1]
    assert last[END_REASON] == "failed" and last[EPOCH] == 2
    assert last[END_MESSAGE] == "ValueError: shapes (3,) and (4,) do not match"
    assert "Traceback" in last[trial_module.TRACEBACK] and "in train" in last[trial_module.TRACEBACK]
    assert last[SCORE] == -1e12  # worse than any real score (mode max): never the best trial
    assert fake_cuda == ["empty_cache"]


def test_no_cuda_no_release(monkeypatch, reports):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    called = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: called.append(1))

    def train(config, data, ctx):
        EpochReporter(ctx).epoch(3, {"val_loss": 0.5, "val_score": 0.5}, None)

    _run(monkeypatch, train)
    assert reports[-1][END_REASON] == "completed" and not called
