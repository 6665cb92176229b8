"""tuner: hyperparameter search for the report models on Ray Tune, tracked in MLflow."""

__version__ = "0.1.0"
