"""Report 002, binary task: Other_Faults against the rest of the Steel Plates Faults (OpenML 1504)."""

from search_spaces._references import CLASSIFIERS
from search_spaces._steel import COMMON_PARAMS, COMMON_REPORT_CONFIG
from trainables import metrics as M
from trainables.cv import BATCHED_FOLDS, CV_FOLDS
from tuner.spec import EarlyStopping, Param, Resources, SpaceSpec, Uniform

SPEC = SpaceSpec(
    name="steel_binary",
    report="002 Steel Plates Faults (ZNEUS project 1)",
    summary="MLP 27->512->256->128->1, BCEWithLogits(pos_weight), Other_Faults vs rest",
    dataset="steel",
    data_options={"task": "binary", "split": (0.9, 0.05, 0.05), "split_seed": 42},
    trainable="trainables.mlp",
    model="MLP (BatchNorm, ReLU, Dropout)",
    metric=M.VAL_ACCURACY,
    mode="max",
    metrics=(M.TRAIN_LOSS, M.VAL_LOSS, M.VAL_ACCURACY, M.VAL_PRECISION_POS, M.VAL_PRECISION_NEG),
    max_epochs=50,
    grace_period=5,
    early_stopping=EarlyStopping(monitor=M.VAL_LOSS, mode="min", patience=10, min_delta=0.01),
    fixed={"plateau_patience": 10, CV_FOLDS: 3, BATCHED_FOLDS: True},
    params=COMMON_PARAMS
    + (Param("pos_weight", Uniform(1.0, 4.0), "BCE weight of the positive class (report: 2)", grid=(1.0, 2.0, 3.0)),),
    default_searcher="optuna",
    default_scheduler="asha",
    resources=Resources(cpus=1, gpus=0),
    references=CLASSIFIERS,
    report_fixed={CV_FOLDS: 1},  # the report trained one model on its single split
    report_config={**COMMON_REPORT_CONFIG, "pos_weight": 2.0},
    report_results={
        "test_loss": 0.8152,
        "test_accuracy": 0.8000,
        "test_precision_neg": 0.8103,
        "test_precision_pos": 0.7727,
    },
    notes=(
        "Split 0.9/0.05/0.05, stratified and seeded; early stopping on val loss (patience 10, min delta 0.01). "
        "cv_folds=3 by default: the single split validates on 97 rows, and its best validation score overstated "
        "the test figure by 0.07-0.10. Measured on the real file (benchmarks/selection_quality.py, 20 trials, 5 "
        "seeds): test 0.7898 +- 0.0171 against 0.7735 +- 0.0168 on the single split (both with re-verification), "
        "validation-to-test drop 0.008 against 0.071, 2.0x the wall time. --set cv_folds=1 is the report's split; "
        "the report's own config trains that way (report_fixed)."
    ),
)
