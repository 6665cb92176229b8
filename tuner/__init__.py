"""tuner: hyperparameter search for the report models on Ray Tune, tracked in MLflow."""

__version__ = "0.1.0"

import time as _time

PROCESS_START = _time.monotonic()
"""When the tuner package was first imported: the start of a ``tuner`` command, for start-up timings."""
