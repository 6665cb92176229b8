"""Parameters both steel spaces share (report 002 trains the same MLP for both tasks).

The grid (``--searcher grid``) varies what the report's choices leave most open (learning rate, batch size,
dropout, depth, weight decay, scaling) and keeps the widths and the schedule at the report's values; random,
HyperOpt and Optuna search the whole space.
"""

from tuner.spec import Choice, LogUniform, Param, Uniform

COMMON_PARAMS = (
    Param("lr", LogUniform(1e-4, 1e-2), "Adam learning rate (report: 1e-3)", grid=(3e-4, 1e-3, 3e-3)),
    Param("batch_size", Choice((16, 32, 64, 128)), "mini-batch size (report: 32)", grid=(32, 128)),
    Param("dropout", Uniform(0.0, 0.6), "dropout after every hidden layer (report: 0.35)", grid=(0.2, 0.35, 0.5)),
    Param("n_layers", Choice((2, 3)), "number of hidden layers (report: 3)"),
    Param("width_1", Choice((128, 256, 512, 1024)), "units of hidden layer 1 (report: 512)", grid=(512,)),
    Param("width_2", Choice((64, 128, 256, 512)), "units of hidden layer 2 (report: 256)", grid=(256,)),
    Param(
        "width_3",
        Choice((32, 64, 128, 256)),
        "units of hidden layer 3 (report: 128)",
        grid=(128,),
        active_if=("n_layers", (3,)),
    ),
    Param("weight_decay", Choice((0.0, 1e-6, 1e-5, 1e-4, 1e-3)), "Adam weight decay (report: none)", grid=(0.0, 1e-4)),
    Param(
        "scaling",
        Choice(("standard", "minmax", "robust", "quantile", "none")),
        "feature scaling fitted on the training split (the report does not say; standard assumed)",
        grid=("standard", "quantile"),
    ),
    Param(
        "lr_schedule",
        Choice(("plateau", "none")),
        "ReduceLROnPlateau on val loss, or a constant rate",
        grid=("plateau",),
    ),
    Param(
        "plateau_factor",
        Uniform(0.1, 0.9),
        "ReduceLROnPlateau factor (report: 0.5)",
        grid=(0.5,),
        active_if=("lr_schedule", ("plateau",)),
    ),
)

COMMON_REPORT_CONFIG = {
    "lr": 1e-3,
    "batch_size": 32,
    "dropout": 0.35,
    "n_layers": 3,
    "width_1": 512,
    "width_2": 256,
    "width_3": 128,
    "weight_decay": 0.0,
    "scaling": "standard",
    "lr_schedule": "plateau",
    "plateau_factor": 0.5,
}
