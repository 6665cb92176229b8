"""Report 001, 2D CNN with ResNet blocks on MIT-BIH heartbeats laid out as 17 x 11 images (5 classes)."""

from search_spaces import _ecg
from search_spaces._references import CLASSIFIERS
from tuner.spec import Choice, IntUniform, Param, SpaceSpec, Uniform

SPEC = SpaceSpec(
    name="ecg_cnn2d",
    report=_ecg.REPORT,
    summary="2D CNN on the beat as a 17x11 grid: conv blocks + ResNet blocks + max-pool + 2 dense, 5 beat classes",
    dataset=_ecg.DATASET,
    data_options=_ecg.DATA_OPTIONS,
    trainable="trainables.cnn2d",
    model="Conv2d blocks, ResNet blocks (identity projection), MaxPool2d, 2 dense layers",
    metric=_ecg.METRIC,
    mode="max",
    metrics=_ecg.METRICS,
    max_epochs=_ecg.MAX_EPOCHS,
    grace_period=_ecg.GRACE_PERIOD,
    early_stopping=_ecg.EARLY_STOPPING,
    fixed=_ecg.FIXED,
    params=(
        Param(
            "hidden",
            Choice((64, 96, 128, 192, 256)),
            "conv channels and dense width (report: 62-256, best 128)",
            grid=(64, 128),
        ),
        Param("num_layers", Choice((2, 3, 4)), "conv blocks before the residual blocks (report: best 3)", grid=(2, 3)),
        Param("num_blocks", IntUniform(1, 7), "residual blocks (report: 1-7, best 1)", grid=(1, 3)),
        Param("dropout", Uniform(0.1, 0.4), "dropout in the dense head (report: best 0.3)", grid=(0.3,)),
        Param("batch_size", Choice((16, 32, 48)), "mini-batch size (report: best 16)", grid=(16, 32)),
        *_ecg.TRAINING_PARAMS,
    ),
    default_searcher="hyperopt",  # the report tuned with Ray's HyperOptSearch
    default_scheduler="asha",
    resources=_ecg.RESOURCES,
    references=CLASSIFIERS,
    report_config={
        "hidden": 128,
        "num_layers": 3,
        "num_blocks": 1,
        "dropout": 0.3,
        "batch_size": 16,
        **_ecg.TRAINING_REPORT_CONFIG,
    },
    report_results={"test_accuracy": 0.9888, "test_macro_recall": 0.9744},
    notes=_ecg.NOTES,
)
