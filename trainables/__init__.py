"""Model families and the shared per-epoch reporting. Nothing here imports the service (``tuner``) or Ray:
a trainable gets its config, its data and a ``TrialContext`` and reports through it."""
