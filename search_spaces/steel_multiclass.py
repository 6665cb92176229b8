"""Report 002, multiclass task: the six named fault types (Other_Faults rows left out)."""

from search_spaces._references import CLASSIFIERS
from search_spaces._steel import COMMON_PARAMS, COMMON_REPORT_CONFIG
from trainables import metrics as M
from trainables.cv import BATCHED_FOLDS, CV_FOLDS
from tuner.spec import EarlyStopping, Param, Resources, SpaceSpec, Uniform

SPEC = SpaceSpec(
    name="steel_multiclass",
    report="002 Steel Plates Faults (ZNEUS project 1)",
    summary="MLP 27->512->256->128->6, weighted CrossEntropy, six fault types",
    dataset="steel",
    data_options={"task": "multiclass", "split": (0.7, 0.15, 0.15), "split_seed": 42},
    trainable="trainables.mlp",
    model="MLP (BatchNorm, ReLU, Dropout)",
    metric=M.VAL_MACRO_ACCURACY,
    mode="max",
    metrics=(M.TRAIN_LOSS, M.VAL_LOSS, M.VAL_MACRO_ACCURACY, M.VAL_MACRO_PRECISION),
    max_epochs=100,
    grace_period=5,
    early_stopping=EarlyStopping(monitor=M.VAL_LOSS, mode="min", patience=20, min_delta=0.01),
    # The report's table gives [4,4,2,3,5,5]; its text says [5,5,2,3,6,6]. The table is used.
    fixed={"plateau_patience": 10, "class_weights": (4.0, 4.0, 2.0, 3.0, 5.0, 5.0), CV_FOLDS: 3, BATCHED_FOLDS: True},
    params=COMMON_PARAMS
    + (
        Param(
            "class_weight_power",
            Uniform(0.0, 1.5),
            "loss weights = report weights ** power: 0 unweighted, 1 the report's (report: 1)",
            grid=(0.0, 1.0, 1.5),
        ),
    ),
    default_searcher="optuna",
    default_scheduler="asha",
    resources=Resources(cpus=1, gpus=0),
    report_fixed={CV_FOLDS: 1},  # the report trained one model on its single split
    references=CLASSIFIERS,
    report_config={**COMMON_REPORT_CONFIG, "class_weight_power": 1.0},
    report_results={"test_loss": 1.2503, "test_macro_accuracy": 0.7988, "test_macro_precision": 0.7985},
    notes=(
        "Split 0.7/0.15/0.15, stratified and seeded; early stopping on val loss (patience 20, min delta 0.01). "
        "cv_folds=3 by default: a trial trains three fold models over the 1,077 non-test rows (real file) "
        "instead of scoring on 190 validation rows. Measured on the real file (benchmarks/selection_quality.py, "
        "20 trials, 5 seeds): test 0.8900 +- 0.0121 against 0.8819 +- 0.0260 on the single split (both with "
        "re-verification), validation-to-test drop -0.001 against 0.002, 1.7x the wall time. --set cv_folds=1 is "
        "the report's split; the report's own config trains that way (report_fixed)."
    ),
)
