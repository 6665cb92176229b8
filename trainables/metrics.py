"""Metric names, typed once: search spaces, trainables, tracking and tests all import them from here."""

TRAIN_LOSS = "train_loss"
VAL_LOSS = "val_loss"

# binary classification (steel_binary)
VAL_ACCURACY = "val_accuracy"
VAL_PRECISION_POS = "val_precision_pos"
VAL_PRECISION_NEG = "val_precision_neg"

# multiclass classification (steel_multiclass): macro accuracy = mean per-class recall (torchmetrics' macro)
VAL_MACRO_ACCURACY = "val_macro_accuracy"
VAL_MACRO_PRECISION = "val_macro_precision"


def as_test(name: str) -> str:
    """The held-out test split's name for a validation metric: ``val_accuracy`` -> ``test_accuracy``."""
    return "test_" + name.removeprefix("val_")
