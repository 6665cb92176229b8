"""The HMS image models of report 003 (EfficientNet-B0/B1, ResNet34d from timm), trained as the report's objective.

One trial = the report's Optuna objective: K patient-grouped folds (default 2) x E epochs (default 2), run one
after the other and reported after EVERY epoch of every fold, so the scheduler can prune a poor trial after the
first epoch of its first fold. Reported steps are numbered 1..K*E; ``cv_kl`` is the mean over folds of each
fold's best validation KL so far (the last report is the trial's score: ``score="last_epoch"`` in the spec).
Loss: KL divergence between the vote distribution and the log-softmax output; metric: the competition's KL.

The checkpoint holds every finished fold's best weights, its normalisation statistics and the out-of-fold
predictions, which is what test evaluation (mean of the fold models, as the report's 5-fold inference) and the
top-k ensemble (``ensemble``) need.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from scipy.special import rel_entr
from torch import nn

from trainables import metrics as M
from trainables.family import resample_scorer
from trainables.hms_inputs import Stats, build_images, fold_stats
from trainables.loop import TrainingState, train_epoch
from trainables.reporting import CHECKPOINT_FILE, EpochReporter, TrialContext

N_CLASSES = 6
LR_SCHEDULES = ("cosine", "onecycle", "exponential", "constant")
NORM_LAYERS = {"batchnorm": None, "groupnorm": "groupnorm1"}
"""The models' own BatchNorm (the report), or timm's one-group GroupNorm: trained from scratch on a few hundred
windows, BatchNorm's running statistics lag the weights and evaluation falls apart (validation KL worse than the
prior); GroupNorm has no train/eval difference."""
PRED_BATCH = 64


def kl_divergence(target: np.ndarray, predicted: np.ndarray) -> float:
    """The competition metric: mean over windows of sum_c y_c log(y_c / p_c), predictions clipped at 1e-15."""
    p = np.clip(predicted.astype(np.float64), 1e-15, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    return float(rel_entr(target.astype(np.float64), p).sum(axis=1).mean())


def patient_folds(data, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds of the cross-validation pool, grouped by patient (no patient on both sides), seeded."""
    from sklearn.model_selection import GroupKFold

    pool = data.splits["train"]
    patients = data.arrays["patient"][pool]
    if len(np.unique(patients)) < k:
        raise ValueError(f"{k} folds need at least {k} patients in the pool, got {len(np.unique(patients))}")
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(pool[tr], pool[va]) for tr, va in splitter.split(pool, groups=patients)]


def kl_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training loss: KL divergence of the vote distribution from the softmax output (batch mean)."""
    return nn.functional.kl_div(torch.log_softmax(logits.float(), dim=1), target, reduction="batchmean")


def make_model(config: dict[str, Any], fixed: dict[str, Any]) -> nn.Module:
    """timm's model with one input channel and six outputs; optional local pretrained weights (weights only)."""
    import timm

    weights = fixed.get("pretrained_file") or ""
    norm = config.get("norm_layer", "batchnorm")
    if norm not in NORM_LAYERS:
        raise ValueError(f"norm_layer must be one of {tuple(NORM_LAYERS)}, got {norm!r}")
    kwargs: dict[str, Any] = {"num_classes": N_CLASSES, "in_chans": 1, "drop_rate": float(config["dropout"])}
    if NORM_LAYERS[norm]:
        kwargs["norm_layer"] = NORM_LAYERS[norm]
    if weights and norm != "batchnorm":
        raise ValueError(f"pretrained_file holds BatchNorm weights; norm_layer={norm!r} cannot load them")
    if weights:  # timm loads the file (safetensors or torch weights-only) and adapts the stem and the head
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
    model = timm.create_model(fixed["architecture"], **kwargs)
    if not weights:  # from scratch: start from uniform predictions (KL ~ that of the prior), not confident noise
        head = model.get_classifier()
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
    return model


def make_schedule(name: str, optimizer: torch.optim.Optimizer, total_steps: int, lr: float):
    """A per-step learning-rate schedule over the fold's training steps."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=max(total_steps, 2))
    if name == "exponential":  # a tenth of the rate by the fold's last step
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.1 ** (1 / max(total_steps, 1)))
    if name == "constant":
        return None
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {name!r}")


def probabilities(model: nn.Module, images: torch.Tensor, device: str) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad(), _autocast(device):
        for start in range(0, len(images), PRED_BATCH):
            logits = model(images[start : start + PRED_BATCH].to(device, non_blocking=True))
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out).numpy()


def _autocast(device: str):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)


def epochs_per_fold(ctx: TrialContext) -> int:
    folds = int(ctx.fixed["folds"])
    if ctx.max_epochs % folds:
        raise ValueError(f"max_epochs ({ctx.max_epochs}) must be folds ({folds}) x epochs per fold")
    return ctx.max_epochs // folds


def train(config: dict[str, Any], data, ctx: TrialContext) -> None:
    device, fixed = ctx.device, ctx.fixed
    epochs = epochs_per_fold(ctx)
    folds = patient_folds(data, int(fixed["folds"]), ctx.seed)
    y = data.arrays["y"]
    reporter = EpochReporter(ctx)
    pool = data.splits["train"]
    oof = np.full((len(pool), N_CLASSES), np.nan, dtype=np.float32)
    position = {row: i for i, row in enumerate(pool)}
    pool_images: dict[Stats | None, torch.Tensor] = {}
    finished: list[dict[str, Any]] = []
    # Continued from a checkpoint: the folds before the saved one are done, the saved fold resumes after its
    # saved epoch with its model, optimizer, schedule and generator. The folds' best models and the out-of-fold
    # predictions come from the checkpoint's weights file, written at the same epoch as its training state (the
    # score is the last epoch's, so every epoch's checkpoint writes both): the state does not hold them twice.
    saved: dict[str, Any] = {}

    def load_state(path: Path) -> None:
        saved.update(TrainingState.read(path), weights=_load(path.parent / CHECKPOINT_FILE))

    step = reporter.restore(load_state) - 1
    resume_fold, resume_epoch = 0, 0
    resumed_best: dict[str, Any] | None = None
    if saved:
        extra = saved["extra"]
        resume_fold, resume_epoch = int(extra["fold"]), int(extra["epoch_in_fold"])
        members = _members_of(saved["weights"])
        if len(members) < resume_fold:
            raise ValueError(
                f"checkpoint {ctx.restore}: its weights hold {len(members)} fold models but its training state is "
                f"in fold {resume_fold + 1}"
            )
        finished, resumed_best = members[:resume_fold], (members[resume_fold:] or [None])[0]
        oof = saved["weights"]["oof"].numpy().copy()
    for k, (train_rows, val_rows) in enumerate(folds):
        if k < resume_fold:
            continue
        stats = fold_stats(config, data, train_rows)
        if stats not in pool_images:  # per-instance or EEG-only images do not depend on the fold: built once
            pool_images.clear()
            pool_images[stats] = build_images(config, data, pool, stats, float(fixed["image_scale"]))
        x_train = pool_images[stats][[position[r] for r in train_rows]]
        x_val = pool_images[stats][[position[r] for r in val_rows]]
        y_train = torch.from_numpy(y[train_rows])
        torch.manual_seed(ctx.seed * 1000 + k)
        model = make_model(config, fixed).to(device)
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=float(config["lr"]),
            betas=(float(config["beta1"]), float(config["beta2"])),
            weight_decay=float(config["weight_decay"]),
        )
        batch = int(config["batch_size"])
        schedule = make_schedule(config["lr_schedule"], optimizer, epochs * -(-len(train_rows) // batch), config["lr"])
        generator = torch.Generator().manual_seed(ctx.seed * 1000 + k)
        state = TrainingState(
            model=model,
            optimizer=optimizer,
            generator=generator,
            **({"schedule": schedule} if schedule is not None else {}),
        )
        prior_kl = kl_divergence(y[val_rows], np.broadcast_to(y[train_rows].mean(axis=0), y[val_rows].shape))
        fold_best: dict[str, Any] | None = None
        first_epoch = 0
        if saved and k == resume_fold:
            state.apply(saved)
            fold_best, first_epoch = resumed_best, resume_epoch
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for epoch_in_fold in range(first_epoch + 1, epochs + 1):
            step += 1
            train_loss = train_epoch(
                model,
                optimizer,
                x_train,
                y_train,
                batch,
                generator,
                kl_loss,
                device,
                after_step=schedule.step if schedule is not None else None,
                autocast=lambda: _autocast(device),
            )
            probs = probabilities(model, x_val, device)
            val_kl = kl_divergence(y[val_rows], probs)
            if np.isfinite(val_kl) and (fold_best is None or val_kl < fold_best["kl"]):
                weights = {name: t.detach().cpu().clone() for name, t in model.state_dict().items()}
                fold_best = {"kl": val_kl, "state": weights, "stats": stats}
                oof[[position[r] for r in val_rows]] = probs
            best_kls = [f["kl"] for f in finished] + ([fold_best["kl"]] if fold_best else [])
            row = {
                M.TRAIN_LOSS: train_loss,
                M.VAL_KL: val_kl,
                M.CV_KL: float(np.mean(best_kls)) if best_kls else float("nan"),
                M.VAL_KL_PRIOR: prior_kl,
                "fold": k + 1,
                M.LR: optimizer.param_groups[0]["lr"],
            }
            if device == "cuda":
                row[M.GPU_PEAK_MEM_MB] = torch.cuda.max_memory_allocated() / 2**20
            members = finished + ([fold_best] if fold_best else [])

            def save_state(path: Path, state=state, k=k, epoch_in_fold=epoch_in_fold) -> None:
                state.save(path, fold=k, epoch_in_fold=epoch_in_fold)

            if reporter.epoch(step, row, lambda path, members=members: _save(path, members, oof, pool), save_state):
                return
        if fold_best is not None:
            finished.append(fold_best)


def _members_of(weights: dict[str, Any]) -> list[dict[str, Any]]:
    """The fold models a weights file holds (finished folds, then the running fold's best so far), as training
    keeps them."""
    return [
        {"kl": float(kl), "state": state, "stats": None if stats is None else Stats(*stats)}
        for kl, state, stats in zip(weights["kl"], weights["folds"], weights["stats"], strict=True)
    ]


def _save(path: Path, folds: list[dict[str, Any]], oof: np.ndarray, pool: np.ndarray) -> None:
    torch.save(
        {
            "folds": [f["state"] for f in folds],
            "kl": [float(f["kl"]) for f in folds],
            "stats": [None if f["stats"] is None else [f["stats"].mean, f["stats"].std] for f in folds],
            "oof": torch.from_numpy(oof.copy()),
            "pool": torch.from_numpy(pool.astype(np.int64)),
        },
        path,
    )


def _load(weights: Path) -> dict[str, Any]:
    return torch.load(weights, map_location="cpu", weights_only=True)


def predict_rows(
    config: dict[str, Any], data, fixed: dict[str, Any], device: str, checkpoint: dict[str, Any], rows
) -> np.ndarray:
    """Mean of the fold models' probabilities on ``rows`` (each fold normalised with its own statistics)."""
    total = np.zeros((len(rows), N_CLASSES))
    for state, stats in zip(checkpoint["folds"], checkpoint["stats"], strict=True):
        model = make_model(config, {**fixed, "pretrained_file": ""})
        model.load_state_dict(state)
        model.to(device)
        fold_stats_ = None if stats is None else Stats(*stats)
        images = build_images(config, data, rows, fold_stats_, float(fixed["image_scale"]))
        total += probabilities(model, images, device)
    return total / len(checkpoint["folds"])


def evaluate(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test") -> dict[str, float]:
    """The report's inference: average the trial's fold models on the held-out patients' windows."""
    return split_scorer(config, data, ctx, weights, split)(None)


def split_scorer(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test"):
    """``evaluate``'s figures of ``split`` or of any resample of its windows, the fold models run once on the
    split (trainables.family.ResamplingFamily): a window's images and probabilities do not depend on the others."""
    units = data.splits[split]
    probs = predict_rows(config, data, ctx.fixed, ctx.device, _load(weights), units)
    prior = data.arrays["y"][data.splits["train"]].mean(axis=0)

    def score_of(picked: np.ndarray, rows: np.ndarray) -> dict[str, float]:
        y = data.arrays["y"][rows]
        return {
            f"{split}_kl": kl_divergence(y, picked),
            f"{split}_kl_prior": kl_divergence(y, np.broadcast_to(prior, y.shape)),
        }

    return resample_scorer(units, probs, score_of)


def ensemble(members: list[tuple[dict[str, Any], Path]], data, ctx: TrialContext) -> dict[str, float]:
    """Report 2.6: the mean of the top trials' predictions, beside the best single trial (members[0]).

    Validation figures use the out-of-fold predictions (every pool window predicted by a fold model that did not
    train on it; all trials of a study share the folds), test figures the held-out patients.
    """
    y = data.arrays["y"]
    test_rows = data.splits["test"]
    oofs, tests = [], []
    for config, weights in members:
        checkpoint = _load(weights)
        oof = checkpoint["oof"].numpy()
        if np.isnan(oof).any():
            raise ValueError(f"{weights}: out-of-fold predictions are incomplete (a fold did not finish)")
        oofs.append(oof)
        tests.append(predict_rows(config, data, ctx.fixed, ctx.device, checkpoint, test_rows))
    pool = _load(members[0][1])["pool"].numpy()
    return {
        "ensemble_members": float(len(members)),
        "single_val_kl": kl_divergence(y[pool], oofs[0]),
        "ensemble_val_kl": kl_divergence(y[pool], np.mean(oofs, axis=0)),
        "single_test_kl": kl_divergence(y[test_rows], tests[0]),
        "ensemble_test_kl": kl_divergence(y[test_rows], np.mean(tests, axis=0)),
    }


KAGGLE_ROWS = 100
"""Frequency rows of a Kaggle spectrogram chain; the EEG chains have 128 (``trainables.hms_inputs``)."""


def example_inputs(data, n: int) -> np.ndarray:
    """The model's input, the raw spectrograms of windows (the data's arrays hold no ``x``): per window the four
    Kaggle chains' 100 frequency rows followed by the four EEG chains' 128, [windows, 4, 228, 256] float32 (NaN
    where the Kaggle power is missing); here the first ``n`` test windows. Raw, not the image, because a datawide
    config normalises the image with each fold's own training statistics."""
    rows = data.splits["test"][:n]
    kaggle, eeg = data.arrays["kaggle"][rows], data.arrays["eeg"][rows]
    return np.concatenate([kaggle.astype(np.float32), eeg.astype(np.float32)], axis=2)


def inference_state(config: dict[str, Any], data, ctx: TrialContext) -> dict[str, Any]:
    """What ``predict`` needs besides the weights (trainables.family.ServingFamily): the backbone and the image
    scale (each fold's normalisation statistics are in the weights file)."""
    return {"fixed": {"architecture": ctx.fixed["architecture"], "image_scale": float(ctx.fixed["image_scale"])}}


def predict(config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: np.ndarray) -> np.ndarray:
    """The six class probabilities of windows given as ``example_inputs`` lays them out: the mean of the fold
    models' probabilities, each on images normalised with its fold's statistics, as ``evaluate`` scores them."""
    x = np.asarray(inputs, dtype=np.float32)
    windows = SimpleNamespace(arrays={"kaggle": x[:, :, :KAGGLE_ROWS], "eeg": x[:, :, KAGGLE_ROWS:]})
    return predict_rows(config, windows, state["fixed"], "cpu", _load(weights), np.arange(len(x)))
