"""What the three HMS spaces share (report 003): the search space of its sections 2.5 and 3.4.

The report searched learning rate, Adam betas, weight decay, the LR scheduler, dropout, normalisation and the
lowpass/highpass clip exponents with Optuna (2 folds x 2 epochs per trial, pruning after the first epoch), and
found that betas and weight decay hardly mattered. Input source and batch size are searched here as well: the
report's EEG-spectrogram experiment (section 2.4) compared them by hand. ``norm_layer`` is ours: the report
fine-tuned ImageNet weights, which cannot be downloaded here, and from scratch on little data BatchNorm fails.
"""

from typing import Any

from trainables import metrics as M
from tuner.spec import Choice, LogUniform, Param, Resources, SpaceSpec, Uniform

PARAMS = (
    Param("lr", LogUniform(1e-4, 1e-2), "Adam learning rate (report: 0.00137 optimised, 0.001 baseline)",
          grid=(3e-4, 1e-3, 1.37e-3, 3e-3)),
    Param("beta1", Uniform(0.8, 0.95), "Adam beta1 (report: baseline's, Adam default 0.9 assumed)", grid=(0.9,)),
    Param("beta2", Uniform(0.99, 0.9999), "Adam beta2 (report: baseline's, Adam default 0.999 assumed)", grid=(0.999,)),
    Param("weight_decay", Choice((0.0, 1e-5, 1e-4, 1e-3, 1e-2)), "Adam weight decay (report: baseline's, 0.01 assumed)",
          grid=(0.0, 1e-2)),
    Param("lr_schedule", Choice(("cosine", "onecycle", "exponential", "constant")),
          "per-step schedule over each fold (report: CosineAnnealingLR)", grid=("cosine", "onecycle")),
    Param("dropout", Uniform(0.0, 0.5), "dropout before the classifier (report: 0.1842 optimised, 0 baseline)",
          grid=(0.0, 0.1842, 0.35)),
    Param("normalisation", Choice(("instance", "datawide")),
          "per-instance, or one mean/std from the training fold (report: datawide optimised, instance baseline)"),
    Param("lowpass", Uniform(7.0, 11.0), "upper clip e^lowpass of the Kaggle spectrograms (report: 10)", grid=(10.0,)),
    Param("highpass", Uniform(-8.0, -2.0), "lower clip e^highpass of the Kaggle spectrograms (report: -6)",
          grid=(-6.0,)),
    Param("input_source", Choice(("kaggle", "eeg", "both")),
          "Kaggle spectrograms, magic-formula EEG spectrograms, or both side by side (report: kaggle; eeg in 2.4)"),
    Param("batch_size", Choice((8, 16, 32)), "mini-batch size (report: baseline's, 32 assumed)", grid=(16,)),
    Param("norm_layer", Choice(("batchnorm", "groupnorm")),
          "the model's BatchNorm (report), or GroupNorm: no running statistics, for training from scratch"),
)  # fmt: skip

BASELINE = {
    "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01, "lr_schedule": "cosine", "dropout": 0.0,
    "normalisation": "instance", "lowpass": 10.0, "highpass": -6.0, "input_source": "kaggle", "batch_size": 32,
    "norm_layer": "batchnorm",
}  # fmt: skip
"""Table 1, "Original": the baseline notebook's configuration."""
OPTIMISED = {**BASELINE, "lr": 0.00137, "dropout": 0.1842, "normalisation": "datawide"}
"""Table 1, "Optimized": what the report's search found for EfficientNet-B1."""

METRICS = (M.TRAIN_LOSS, M.VAL_KL, M.CV_KL, M.VAL_KL_PRIOR)

FIXED = {
    "folds": 2,
    "image_scale": 0.125,
    "pretrained_file": "",
    "ensemble_top_k": 3,
}
"""folds: K of the in-trial cross-validation (report: 2 while searching, 5 for final models); max_epochs is
folds x epochs per fold. image_scale: the 512 x 256 (512 x 512 with both sources) image is resized by this;
0.125 (64 x 32) keeps a 100-trial study on a 2-core CPU to minutes; use --set image_scale=1.0 on a GPU.
pretrained_file: local timm weights (safetensors or a weights-only torch file; there is no network); empty =
from scratch.
ensemble_top_k: trials averaged into the ensemble after the study."""

DATA_OPTIONS = {"windows": "all", "test_fraction": 0.2, "split_seed": 42}
"""windows: every labelled window, or the baseline's first window per EEG ("first_per_eeg", 17k samples on the
real data instead of 107k); test_fraction: share of patients held out for the final figures."""

SMOKE = {"image_scale": 0.0625}

RESOURCES = Resources(cpus=1, gpus=0.5)
"""Half a GPU per trial where GPUs exist (the driver falls back to CPUs with a note where none do)."""

NOTES = (
    "Objective as the report: 2 patient-grouped folds x 2 epochs, reported after every epoch (steps 1-4), ASHA "
    "prunes after the first epoch of the first fold; score = mean over folds of the best validation KL. The "
    "report's KL figures are on Kaggle's hidden test set (5-fold models); ours are on held-out patients. No "
    "untuned references (SpaceSpec.references): the inputs are spectrogram images and the target a vote "
    "distribution, which no cheap scikit-learn model fits honestly; the untuned floor is val_kl_prior, the KL of the "
    "training fold's mean vote distribution, reported every epoch."
)


def hms_spec(
    name: str,
    architecture: str,
    report_config: dict[str, Any],
    report_variants: dict[str, dict[str, Any]],
    report_results: dict[str, float],
    notes: str,
    report_variant_results: dict[str, dict[str, float]] | None = None,
) -> SpaceSpec:
    """One of the report's three ensemble members: the same search, objective and data; its own timm model."""
    return SpaceSpec(
        name=name,
        report="003 HMS Harmful Brain Activity Classification",
        summary=f"{architecture} (timm) on 4-chain spectrogram images, 6 vote distributions, KL divergence",
        dataset="hms",
        data_options=DATA_OPTIONS,
        trainable="trainables.hms",
        model=f"timm {architecture}, 1 input channel, 6 outputs",
        metric=M.CV_KL,
        mode="min",
        metrics=METRICS,
        max_epochs=4,
        grace_period=1,
        score="last_epoch",
        fixed={**FIXED, "architecture": architecture},
        params=PARAMS,
        default_searcher="optuna",
        default_scheduler="asha",
        resources=RESOURCES,
        smoke=SMOKE,
        report_config=report_config,
        report_variants=report_variants,
        report_results=report_results,
        report_variant_results=report_variant_results or {},
        notes=f"{NOTES} {notes}",
    )
