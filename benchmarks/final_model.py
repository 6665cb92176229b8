"""Final model: which way of training one config's final model scores best on the test split (the steel MLPs).

For one config (the report's, or ``--config FILE``, an export) and each seed, on the same test split:

    single      one model on the loader's train split, its best validation epoch (the report's protocol)
    cv          K fold models over the non-test rows, their mean prediction (what a cv_folds=K study scores)
    refit       one model on every non-test row, trained for the cv run's best-epoch count with the learning
                rates the cv run's schedule used epoch by epoch (no validation rows are left to stop on)
    ensemble    the cv models of every seed together (what averaging the verify phase's re-runs would give)

It prints each seed's test figure per way, then mean +- sd over seeds, and the one figure of the ensemble. The
question it answers: can the final model of a chosen config do better than the fold models a study scores today.

    python benchmarks/final_model.py --space steel_multiclass [--data FILE] [--seeds 4] [--k 3] [--config FILE]

Without --data the space's generated data is used (and said so). Runs in this process, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from trainables import mlp  # noqa: E402
from trainables.cv import CV_FOLDS  # noqa: E402
from trainables.loop import train_epoch  # noqa: E402
from trainables.reporting import BEST_EPOCH, CHECKPOINT_FILE  # noqa: E402
from tuner import spaces  # noqa: E402
from tuner.datasets import load_dataset  # noqa: E402
from tuner.trial import make_context  # noqa: E402

WAYS = ("single", "cv", "refit")
"""Each seed's ways; the ensemble is one figure over all seeds."""


def trained(spec, config, data, seed: int, folds: int, keep: Path):
    """Train ``config`` with ``folds`` folds as a trial would; its epoch rows, best weights and context."""
    rows: list[dict] = []
    weights = keep / f"{folds}-{seed}.pt"

    def report(metrics, checkpoint):
        rows.append(metrics)
        if checkpoint is not None:
            weights.write_bytes((Path(checkpoint) / CHECKPOINT_FILE).read_bytes())

    ctx = make_context(spec, seed, "cpu", report=report, overrides={CV_FOLDS: folds})
    mlp.train(config, data, ctx)
    return rows, weights, ctx


def probabilities(model, task, x: np.ndarray) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(x))
    return torch.sigmoid(logits) if task.binary else logits.softmax(dim=1)


def fold_probabilities(config, data, ctx, weights: Path) -> list[torch.Tensor]:
    """Each fold model's test probabilities (each with its own scaler), as ``mlp.evaluate`` averages them."""
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    states = saved["folds"] if isinstance(saved, dict) and "folds" in saved else [saved]
    out = []
    for fold, state in zip(mlp.make_folds(config, data, ctx, k=len(states), trains=False), states, strict=True):
        fold.model.load_state_dict(state)
        out.append(probabilities(fold.model, fold.task, mlp.scaled_rows(data, data.splits["test"], fold.scaler)["x"]))
    return out


def refit(config, data, ctx, epochs: int, rates: list[float]) -> tuple[torch.Tensor, object]:
    """One model on every non-test row for ``epochs`` epochs at ``rates`` (one per epoch); its test probabilities."""
    task = mlp.Task(config, data, ctx.fixed, "cpu")
    rows = np.sort(np.concatenate([data.splits["train"], data.splits["val"]]))
    scaler = mlp.fitted_scaler(config, data.arrays["x"][rows])
    part = mlp.scaled_rows(data, rows, scaler)
    torch.manual_seed(ctx.seed)
    model = mlp.MLP(data.meta["n_features"], mlp.hidden_widths(config), float(config["dropout"]), task.n_outputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=rates[0], weight_decay=float(config["weight_decay"]))
    generator = torch.Generator().manual_seed(ctx.seed)
    x, y = torch.as_tensor(part["x"]), task.target(part["y"], "cpu")
    for epoch in range(epochs):
        for group in optimizer.param_groups:
            group["lr"] = rates[epoch]
        train_epoch(model, optimizer, x, y, int(config["batch_size"]), generator, task.loss, "cpu")
    return probabilities(model, task, mlp.scaled_rows(data, data.splits["test"], scaler)["x"]), task


def score(task, data, probs: torch.Tensor, metric: str) -> float:
    predicted = (probs[:, 0] > 0.5).long().numpy() if task.binary else probs.argmax(dim=1).numpy()
    return task.scores(data.split("test")["y"], predicted, "test")[metric]


def one_seed(spec, config, data, seed: int, k: int, metric: str, keep: Path) -> tuple[dict, list[torch.Tensor]]:
    _, single_weights, single_ctx = trained(spec, config, data, seed, 1, keep)
    rows, cv_weights, ctx = trained(spec, config, data, seed, k, keep)
    # An epoch row's "lr" is the rate after that epoch's plateau step: epoch e trained at the row before it.
    rates = [float(config["lr"])] + [row["lr"] for row in rows[:-1]]
    folds = fold_probabilities(config, data, ctx, cv_weights)
    refit_probs, task = refit(config, data, ctx, int(rows[-1][BEST_EPOCH]), rates)
    figures = {
        "single": mlp.evaluate(config, data, single_ctx, single_weights)[metric],
        "cv": score(task, data, torch.stack(folds).mean(dim=0), metric),
        "refit": score(task, data, refit_probs, metric),
    }
    return figures, folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="steel_multiclass", choices=("steel_multiclass", "steel_binary"))
    parser.add_argument("--data", type=Path, help="the real Steel Plates file (default: generated)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--k", type=int, default=3, help="folds of the cv and refit ways (default 3)")
    parser.add_argument("--config", type=Path, help="an exported best_config.json (default: the report's config)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = spaces.get(args.space)
    config = json.loads(args.config.read_text())["config"] if args.config else spec.active_config(spec.report_config)
    metric = spec.metric.replace("val_", "test_", 1)
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(spec.dataset, args.data, dict(spec.data_options), Path(tmp))
        source = args.data or "SYNTHETIC data (generated in the real file's layout)"
        print(
            f"{spec.name}, {source}; {metric} on the test split ({len(data.splits['test'])} rows); k={args.k}; "
            f"config: {args.config or 'the report config'}"
        )
        results: dict[str, list[float]] = {way: [] for way in WAYS}
        every_fold: list[torch.Tensor] = []
        for seed in range(args.seeds):
            figures, folds = one_seed(spec, config, data, seed, args.k, metric, Path(tmp))
            every_fold += folds
            for way, value in figures.items():
                results[way].append(value)
            print(f"seed {seed}: " + "  ".join(f"{way} {value:.4f}" for way, value in figures.items()), flush=True)
        task = mlp.Task(config, data, spec.fixed, "cpu")
        ensemble = score(task, data, torch.stack(every_fold).mean(dim=0), metric)
    print(f"\n{'way':<10} {'mean +- sd':>16}  per seed")
    for way, values in results.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{way:<10} {statistics.mean(values):.4f} +- {spread:.4f}  " + " ".join(f"{v:.4f}" for v in values))
    print(f"ensemble   {ensemble:.4f}            the cv models of all {args.seeds} seeds together")


if __name__ == "__main__":
    main()
