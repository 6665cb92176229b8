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

# pain_rnn: subject-level macro F1 of the majority vote over windows (val_accuracy above, subject-level too)
VAL_MACRO_F1 = "val_macro_f1"

# house_mlp: errors in dollars of SalePrice; NLL of SalePrice in dollars under the predicted Gaussian
VAL_RMSE = "val_rmse"
VAL_MSE = "val_mse"
VAL_MAE = "val_mae"
VAL_NLL = "val_nll"

# ecg_cnngru, ecg_cnn2d (with VAL_ACCURACY): macro recall = mean per-class recall, the report's "recallmacro"
# (the quantity steel_multiclass calls macro accuracy). usps_cnn reports VAL_ACCURACY only.
VAL_MACRO_RECALL = "val_macro_recall"


# hms_b1, hms_b0, hms_resnet34d: the competition's KL divergence. cv_kl = mean over folds of each fold's best
# val_kl so far (the searched metric); val_kl_prior = KL of predicting the training fold's mean vote distribution.
CV_KL = "cv_kl"
VAL_KL = "val_kl"
VAL_KL_PRIOR = "val_kl_prior"

GPU_PEAK_MEM_MB = "gpu_peak_mem_mb"
"""What a family reports per epoch when it trains on a GPU: the epoch's peak allocated memory (MiB)."""
LR = "lr"
"""The optimizer's learning rate in the epoch (a family that schedules it reports it)."""


def as_test(name: str) -> str:
    """The held-out test split's name for a validation metric: ``val_accuracy`` -> ``test_accuracy``."""
    return "test_" + name.removeprefix("val_")
