"""The files Ray Tune writes in an experiment folder, as tuner reads and edits them (see ``tuner.internals``).

Tune saves a study as a snapshot per driver session (``experiment_state-<session>.json``, the search
algorithm's ``searcher-state-<session>.pkl`` or ``search_gen_state-<session>.json``, ``callback-states-<session>.pkl``,
...), a ``tuner.pkl`` once, and each trial's checkpoints as ``checkpoint_<index>`` folders in the trial's folder.
None of it is a public format: Tune reads it back only through ``Tuner.restore``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

from tuner.errors import TunerError

EXPERIMENT_STATE = re.compile(r"^experiment_state-(?P<session>.+)\.json$")
CHECKPOINT_PREFIX = "checkpoint_"
SEARCH_STATE = "search_gen_state-*.json"
"""Ray Tune's search generator state (a pickle under a .json name), one per driver session."""
RANDOM_STATE = "basic-variant-state-*.json"
"""Ray Tune's variant generator state (random search), likewise."""
CALLBACK_STATES = "callback-states-*.pkl"


def newest_session(folder: Path) -> str | None:
    """The driver session of the newest snapshot in the experiment ``folder`` (None: no snapshot yet).

    Relies on: ``experiment_state-<session>.json`` names, sessions sorting by time (Tune names them by date and
    time). Why not public: Tune exposes no list of its snapshots. Checked against Ray 2.60.0."""
    sessions = sorted(
        m["session"] for p in folder.glob("experiment_state-*.json") if (m := EXPERIMENT_STATE.match(p.name))
    )
    return sessions[-1] if sessions else None


def session_files(folder: Path, session: str) -> list[Path]:
    """The files of one snapshot: those whose name (less its suffix) ends with ``-<session>``.

    Relies on: every file of a snapshot being named after its driver session. Why not public: as
    ``newest_session``. Checked against Ray 2.60.0."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.stem.endswith(f"-{session}"))


def newest_experiment_state(experiment: Path) -> Path | None:
    """The experiment state file of Tune's newest snapshot in ``experiment`` (None: none there)."""
    session = newest_session(experiment) if experiment.is_dir() else None
    return experiment / f"experiment_state-{session}.json" if session is not None else None


def trial_runs(state_file: Path) -> dict[str, dict[str, Any]]:
    """Trial id -> what Tune saved of the trial's run (``start_time``, ``last_result_time``, ``last_result``...)
    in an experiment state file. Raises OSError or ValueError/KeyError/TypeError for a file it cannot read.

    Relies on: the file's ``trial_data``: pairs of JSON texts, the trial's description (with ``trial_id``) and its
    run metadata. Why not public: Tune's ``ExperimentAnalysis`` reads trials' ``result.json`` files, which tuner
    does not write (metrics go to MLflow), and does not give the wall times. Checked against Ray 2.60.0."""
    saved = json.loads(state_file.read_text())
    return {json.loads(trial)["trial_id"]: json.loads(meta) for trial, meta in saved["trial_data"]}


def is_checkpoint_folder(name: str) -> bool:
    """Whether a folder in a trial's folder is one of Tune's checkpoints.

    Relies on: Tune naming them ``checkpoint_<index>``. Why not public: a Trial knows its latest checkpoint only,
    not the older ones its folder still holds. Checked against Ray 2.60.0."""
    return name.startswith(CHECKPOINT_PREFIX)


def raise_search_budget(experiment: Path, more: int) -> int:
    """Raise the trial budget in the experiment's newest saved search state by ``more``; the new budget.

    Relies on: the search generator's state (``search_gen_state-*.json``, a cloudpickle of a dict with
    ``total_samples``, ``counter`` and ``finished``), or random search's (``basic-variant-state-*.json``, with
    ``_iterators``, ``_total_samples`` and ``_finished``, its last iterator holding ``num_samples`` and
    ``num_samples_left``). Why not public: ``Tuner.restore`` takes no new ``num_samples``. Checked against
    Ray 2.60.0."""
    from ray import cloudpickle  # Tune wrote the state with it (its experiment spec holds the trainable)

    states = sorted(experiment.glob(SEARCH_STATE)) or sorted(experiment.glob(RANDOM_STATE))
    if not states:
        raise TunerError(
            f"{experiment} holds no saved search state ({SEARCH_STATE} or {RANDOM_STATE}); the study cannot be extended"
        )
    path = states[-1]
    state = cloudpickle.loads(path.read_bytes())
    if "total_samples" in state:  # the search generator: it asks its searcher until counter reaches the budget
        state["total_samples"] = max(state["total_samples"], state["counter"]) + more
        state["finished"], total = False, state["total_samples"]
    else:  # random search: its (only) trial iterator draws num_samples_left more configs from its random state
        iterator = state["_iterators"][-1]
        iterator.num_samples += more
        iterator.num_samples_left += more
        state["_total_samples"] += more
        state["_finished"], total = False, state["_total_samples"]
    tmp = path.with_name(f"tmp-{path.name}")
    tmp.write_bytes(cloudpickle.dumps(state))
    os.replace(tmp, path)  # whole or not at all: the snapshot stays restorable
    return int(total)


def newest_callback_states(experiment: Path) -> dict[str, Any] | None:
    """The callbacks' states (``Callback.get_state``) of Tune's newest snapshot in ``experiment``, by callback; None
    when there is none.

    Relies on: ``callback-states-<session>.pkl``, a pickle of a dict. Why not public: Tune hands the states back
    only to the callbacks of a restored Tuner. Checked against Ray 2.60.0."""
    states = sorted(experiment.glob(CALLBACK_STATES))
    return pickle.loads(states[-1].read_bytes()) if states else None


__all__ = ["CHECKPOINT_PREFIX", "is_checkpoint_folder", "newest_callback_states", "newest_experiment_state",
           "newest_session", "raise_search_budget", "session_files", "trial_runs"]  # fmt: skip
