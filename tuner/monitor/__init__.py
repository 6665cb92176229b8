"""Tuner's watch over a running study, in the driver: a Ray Tune callback (``callback``) that hands Tune's events
to the study's trial ledger (``ledger``, the state a resumed study continues), the phase's MLflow child runs
(``child_runs``), the checkpoint clean-up (``janitor``), what the driver prints and writes while trials run
(``progress``) and the guard that stops a study whose disk is full (``disk``)."""

from tuner.monitor.callback import StudyMonitor, restored_monitor
from tuner.monitor.ledger import TrialLedger, TrialOutcome

__all__ = ["StudyMonitor", "TrialLedger", "TrialOutcome", "restored_monitor"]
