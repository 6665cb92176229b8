"""Report 001, 1D CNN + ResNet blocks + GRU on single MIT-BIH heartbeats (5 classes)."""

from search_spaces import _ecg
from search_spaces._references import CLASSIFIERS
from tuner.spec import Choice, IntUniform, Param, SpaceSpec

SPEC = SpaceSpec(
    name="ecg_cnngru",
    report=_ecg.REPORT,
    summary="1D conv + ResNet blocks + max-pool + linear + multi-layer GRU + 2 dense, 5 beat classes",
    dataset=_ecg.DATASET,
    data_options=_ecg.DATA_OPTIONS,
    trainable="trainables.cnn1d_gru",
    model="Conv1d block, ResNet blocks, MaxPool1d, Linear (flattened or per step), GRU (optional LayerNorm), 2 dense",
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
            Choice((32, 64, 128)),
            "conv channels and dense width (report: 64 and 128 tried, best 64)",
            grid=(64, 128),
        ),
        Param(
            "num_blocks",
            IntUniform(1, 5),
            "residual blocks after the first conv block (report: 1-5, best 5)",
            grid=(1, 5),
        ),
        Param("gru_hidden", Choice((32, 64, 128, 256, 512)), "GRU hidden units (report: best 256)", grid=(64, 256)),
        Param("num_layers", Choice((2, 3, 4)), "stacked GRU layers (report: best 2)", grid=(2,)),
        Param(
            "gru_input",
            Choice(("flattened", "steps")),
            "what the GRU reads: the conv output flattened to one vector (the report's text) or the 93 pooled steps",
        ),
        Param(
            "layer_norm",
            Choice((True, False)),
            "LayerNorm on the GRU output (report: added to converge faster)",
            grid=(True,),
        ),
        Param(
            "dropout",
            Choice((0.2, 0.3, 0.4)),
            "between GRU layers and in the dense head (report: best 0.4)",
            grid=(0.4,),
        ),
        Param("batch_size", Choice((16, 32, 48, 60)), "mini-batch size (report: best 32)", grid=(32,)),
        *_ecg.TRAINING_PARAMS,
    ),
    default_searcher="hyperopt",  # the report tuned with Ray's HyperOptSearch
    default_scheduler="asha",
    resources=_ecg.RESOURCES,
    references=CLASSIFIERS,
    report_config={
        "hidden": 64,
        "num_blocks": 5,
        "gru_hidden": 256,
        "num_layers": 2,
        "gru_input": "flattened",
        "layer_norm": True,
        "dropout": 0.4,
        "batch_size": 32,
        **_ecg.TRAINING_REPORT_CONFIG,
    },
    report_results={"test_accuracy": 0.9858, "test_macro_recall": 0.9593},
    notes=_ecg.NOTES,
)
