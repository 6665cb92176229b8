"""The search space of __NAME__: what is searched, what trains it, how it is scored.

Run it with ``tuner run space.py`` (from this folder) or ``tuner run path/to/__NAME__/space.py``; ``tuner show
space.py`` lists it. This folder comes first on the import path wherever the study runs, so ``trainable`` and
``dataset`` name the modules beside this file.
"""

from tuner import Choice, EarlyStopping, IntUniform, LogUniform, Param, Reference, Resources, SpaceSpec, Uniform

SPEC = SpaceSpec(
    name="__NAME__",  # names the results folder (results/__NAME__/) and the MLflow experiment
    report="your own",
    summary="a small MLP on a tabular classification dataset",
    # The loader: module:function with load(path, options, cache_dir) -> tuner.LoadedData (see data.py).
    dataset="data:load",
    data_options={"val_fraction": 0.2, "test_fraction": 0.2, "split_seed": 0},
    # The model family: a module with train() and evaluate(), and inference_state() + predict() to publish the
    # chosen model (see family.py).
    trainable="family",
    model="MLP (Linear, ReLU, Dropout)",
    # The metric the search optimises: the family reports it after every epoch, among `metrics`.
    metric="val_accuracy",
    mode="max",
    metrics=("val_loss", "val_accuracy"),
    max_epochs=8,
    params=(
        Param("lr", LogUniform(1e-3, 3e-2), "Adam learning rate"),
        Param("batch_size", Choice((16, 32, 64)), "mini-batch size"),
        Param("n_layers", Choice((1, 2)), "hidden layers"),
        Param("width_1", IntUniform(16, 128), "units of the first hidden layer"),
        # A conditional parameter: it exists only when n_layers is 2 (searchers sample it; trials never see it
        # otherwise).
        Param("width_2", IntUniform(16, 128), "units of the second hidden layer", active_if=("n_layers", (2,))),
        Param("dropout", Uniform(0.0, 0.5), "dropout after each hidden layer"),
    ),
    fixed={"weight_decay": 0.0},  # settings that are not searched; `tuner run --set weight_decay=0.001` overrides
    # Stop a trial early when val_loss has not improved for 3 epochs; ASHA may prune it after `grace_period`.
    early_stopping=EarlyStopping("val_loss", "min", patience=3),
    grace_period=2,
    default_searcher="optuna",
    default_scheduler="asha",
    resources=Resources(cpus=1),
    # Optional: a config you trust (a published one, your current default). The search evaluates it first and the
    # study trains it on the same split as the baseline of the chosen config's test figures. Leave it out if you
    # have none.
    report_config={"lr": 0.01, "batch_size": 32, "n_layers": 1, "width_1": 64, "dropout": 0.1},
    # Optional: untuned scikit-learn models the chosen config is compared with on the same test split, each
    # difference with a paired bootstrap interval and a verdict (the family's score_predictions() scores them).
    references=(
        Reference("random_forest", "sklearn.ensemble.RandomForestClassifier", {"random_state": 0}),
        Reference("logistic_regression", "sklearn.linear_model.LogisticRegression", {"max_iter": 1000}, scaled=True),
    ),
)
