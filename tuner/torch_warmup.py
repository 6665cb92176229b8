"""Imported last by a local Ray instance's workers as they start (``tuner.cluster.TRIAL_MODULES``): when the model
family imported torch, torch's compiler package too. A process's first optimizer imports it (``Optimizer`` is
wrapped by ``torch._disable_dynamo``: ~2.5 s on a 2-core machine), so without this every trial actor's first trial
paid it after it started; a worker Ray pre-starts pays it while the driver prepares the study."""

import sys

if "torch" in sys.modules:
    import torch._dynamo  # noqa: F401
