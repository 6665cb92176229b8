"""Tuner's watch over a running study, in the driver: a Ray Tune callback (``callback``) that hands Tune's events
to the study's trial ledger (``ledger``, the state a resumed study continues), MLflow, the checkpoint clean-up
(``janitor``) and what the driver prints and writes while trials run (``progress``)."""

from tuner.monitor.callback import StudyMonitor, restored_monitor
from tuner.monitor.ledger import TrialLedger, TrialOutcome

__all__ = ["StudyMonitor", "TrialLedger", "TrialOutcome", "restored_monitor"]
