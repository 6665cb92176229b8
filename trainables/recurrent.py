"""The recurrent classifier of report 000 (pirate pain), trained as a K-fold ensemble inside one trial.

Per fold, fitted on that fold's training subjects only: zero-variance joints dropped, optional PCA inside each
joint group, min-max scaling. Each subject's series is cut into sliding windows (``window_size``, ``stride``;
the last window zero-padded) that inherit the subject's label. The K fold models train side by side, one
epoch each per reported epoch, so the scheduler sees the fold-averaged validation macro F1 after every epoch
and can prune there. A subject's prediction is the majority vote of its windows' argmax; on the test subjects
the windows' logits are first averaged over the K fold models, each fed through its own fold's preprocessing.

Model as the report: RNN / LSTM / GRU (optionally bidirectional; dropout between stacked layers) and one
Linear layer on the last layer's final hidden state(s). AdamW with ``weight_decay = l2_lambda`` (the report's
"AdamW, which includes L2 regularization"), an L1 penalty ``l1_lambda * sum|w|`` added to the loss, and
CrossEntropy with label smoothing and class weights ``1 / log(1 + count)`` over the fold's training windows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.feature_selection import VarianceThreshold
from sklearn.preprocessing import MinMaxScaler
from torch import nn

from trainables import metrics as M
from trainables.class_scores import Confusion
from trainables.loop import EVAL_BATCH, TrainingState
from trainables.reporting import EpochReporter, TrialContext

RNNS = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


class RecurrentClassifier(nn.Module):
    def __init__(self, n_inputs: int, config: dict[str, Any], n_classes: int):
        super().__init__()
        self.layers, self.directions = int(config["n_layers"]), 2 if config["bidirectional"] else 1
        self.hidden = int(config["hidden_size"])
        self.rnn = RNNS[config["rnn_type"]](
            n_inputs,
            self.hidden,
            num_layers=self.layers,
            batch_first=True,
            bidirectional=self.directions == 2,
            dropout=float(config["dropout"]) if self.layers > 1 else 0.0,  # torch applies it between layers only
        )
        self.head = nn.Linear(self.hidden * self.directions, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        last = h.view(self.layers, self.directions, x.shape[0], self.hidden)[-1]
        return self.head(last.permute(1, 0, 2).reshape(x.shape[0], -1))


class SeriesPreprocessor:
    """Zero-variance joints dropped, optional PCA per joint group, then min-max scaling: fitted on the time
    steps of training subjects only, so no statistic of a validation or test subject leaks into training."""

    def __init__(self, feature_names: tuple[str, ...], joint_groups: tuple[tuple[str, ...], ...], pca: float | None):
        self.names, self.joint_groups, self.pca = list(feature_names), joint_groups, pca

    def fit(self, series: np.ndarray) -> SeriesPreprocessor:
        rows = series.reshape(-1, series.shape[-1])
        grouped = [self.names.index(j) for group in self.joint_groups for j in group]
        self.others = [i for i in range(len(self.names)) if i not in grouped]
        kept = set(np.array(grouped)[VarianceThreshold(0.0).fit(rows[:, grouped]).get_support()].tolist())
        self.groups: list[tuple[list[int], PCA | None]] = []
        for group in self.joint_groups:
            cols = [self.names.index(j) for j in group if self.names.index(j) in kept]
            if cols:
                use_pca = self.pca is not None and len(cols) > 1
                self.groups.append((cols, PCA(self.pca, svd_solver="full").fit(rows[:, cols]) if use_pca else None))
        self.scaler = MinMaxScaler().fit(self._features(rows))
        return self

    def _features(self, rows: np.ndarray) -> np.ndarray:
        parts = [rows[:, self.others]]
        parts += [pca.transform(rows[:, cols]) if pca else rows[:, cols] for cols, pca in self.groups]
        return np.concatenate(parts, axis=1)

    def transform(self, series: np.ndarray) -> np.ndarray:
        rows = self.scaler.transform(self._features(series.reshape(-1, series.shape[-1])))
        return rows.reshape(*series.shape[:2], -1).astype(np.float32)


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start steps of the sliding windows over a series of ``length`` steps. Windows cover the whole series:
    the last one may run past the end and is zero-padded; a series shorter than a window gives one window."""
    if window < 1 or stride < 1 or length < 1:
        raise ValueError(f"need length, window and stride >= 1, got {length}, {window}, {stride}")
    return np.arange(1 + max(0, math.ceil((length - window) / stride))) * stride


def majority_vote(
    window_classes: np.ndarray, window_subjects: np.ndarray, subjects: np.ndarray, n_classes: int
) -> np.ndarray:
    """Each subject's class: the most frequent class among its windows (a tie goes to the lower class index)."""
    position = {int(s): i for i, s in enumerate(subjects)}
    votes = np.zeros((len(subjects), n_classes), dtype=np.int64)
    np.add.at(votes, ([position[int(s)] for s in window_subjects], window_classes), 1)
    return votes.argmax(axis=1)


def pad_for_windows(series: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad series [subjects, steps, features] at the end so every window fits; return (padded, starts)."""
    starts = window_starts(series.shape[1], window, stride)
    padded = np.zeros((series.shape[0], starts[-1] + window, series.shape[2]), dtype=np.float32)
    padded[:, : series.shape[1]] = series
    return padded, starts


class _Windows:
    """One fold's preprocessed, zero-padded series of every subject; windows are gathered by (subject, start)."""

    def __init__(self, data, config: dict[str, Any], fit_subjects: np.ndarray, device: str):
        pca = float(config["pca_variance"]) if config["joint_pca"] else None
        meta, series = data.meta, data.arrays["series"]
        prep = SeriesPreprocessor(meta["feature_names"], meta["joint_groups"], pca).fit(series[fit_subjects])
        self.window = int(config["window_size"])
        padded, self.starts = pad_for_windows(prep.transform(series), self.window, int(config["stride"]))
        self.series = torch.as_tensor(padded, device=device)
        self.offsets = torch.arange(self.window, device=device)
        self.n_features = padded.shape[2]

    def index(self, subjects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every window of ``subjects``: (subject of each window, start step of each window)."""
        return np.repeat(subjects, len(self.starts)), np.tile(self.starts, len(subjects))

    def gather(self, subj: np.ndarray, start: np.ndarray) -> torch.Tensor:
        s = torch.as_tensor(subj, device=self.series.device)
        t = torch.as_tensor(start, device=self.series.device)
        return self.series[s[:, None], t[:, None] + self.offsets[None, :]]


def _logits(model: nn.Module, windows: _Windows, subj: np.ndarray, start: np.ndarray) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        chunks = range(0, len(subj), EVAL_BATCH)
        return torch.cat([model(windows.gather(subj[i : i + EVAL_BATCH], start[i : i + EVAL_BATCH])) for i in chunks])


def _scores(logits: torch.Tensor, subj: np.ndarray, data, subjects: np.ndarray, prefix: str) -> dict[str, float]:
    """Window-level plain cross-entropy, subject-level macro F1 and accuracy of the majority vote."""
    y = data.arrays["y"]
    n_classes = len(data.meta["class_names"])
    target = torch.as_tensor(y[subj], device=logits.device)
    loss = nn.functional.cross_entropy(logits, target).item()
    pred = majority_vote(logits.argmax(dim=1).cpu().numpy(), subj, subjects, n_classes)
    counts = Confusion(y[subjects], pred, labels=range(n_classes))
    return {
        f"{prefix}_loss": loss,
        f"{prefix}_macro_f1": float(np.mean(counts.f1())),
        f"{prefix}_accuracy": counts.accuracy(),
    }


class _Fold:
    """One fold's windows, model, optimizer and loss."""

    def __init__(self, k: int, config: dict[str, Any], data, ctx: TrialContext):
        self.train_subjects, self.val_subjects = data.splits[f"fold{k}_train"], data.splits[f"fold{k}_val"]
        self.windows = _Windows(data, config, self.train_subjects, ctx.device)
        torch.manual_seed(ctx.seed + k)
        self.model = RecurrentClassifier(self.windows.n_features, config, len(data.meta["class_names"])).to(ctx.device)
        self.train_subj, self.train_start = self.windows.index(self.train_subjects)
        self.y = torch.as_tensor(data.arrays["y"], device=ctx.device)
        counts = np.bincount(data.arrays["y"][self.train_subj], minlength=len(data.meta["class_names"]))
        weight = torch.as_tensor(1.0 / np.log1p(counts), dtype=torch.float32, device=ctx.device)
        self.loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=float(ctx.fixed["label_smoothing"]))
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=float(config["lr"]), weight_decay=float(config["l2_lambda"])
        )
        self.l1 = float(config["l1_lambda"])
        self.generator = torch.Generator().manual_seed(ctx.seed + k)

    def train_epoch(self, batch_size: int) -> float:
        self.model.train()
        order = torch.randperm(len(self.train_subj), generator=self.generator).numpy()
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            subj = self.train_subj[idx]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(self.model(self.windows.gather(subj, self.train_start[idx])), self.y[subj])
            total += loss.item() * len(idx)
            if self.l1 > 0:
                loss = loss + self.l1 * sum(p.abs().sum() for p in self.model.parameters())
            loss.backward()
            self.optimizer.step()
        return total / len(order)

    def validate(self, data) -> dict[str, float]:
        subj, start = self.windows.index(self.val_subjects)
        return _scores(_logits(self.model, self.windows, subj, start), subj, data, self.val_subjects, "val")


def train(config: dict[str, Any], data, ctx: TrialContext) -> None:
    """Train the K fold models side by side; report the fold-averaged metrics once per epoch."""
    folds = [_Fold(k, config, data, ctx) for k in range(int(data.meta["cv_folds"]))]
    reporter = EpochReporter(ctx)
    parts = {
        f"{name}{k}": obj
        for k, f in enumerate(folds)
        for name, obj in (("model", f.model), ("optimizer", f.optimizer), ("generator", f.generator))
    }
    state = TrainingState(**parts)

    def save(path: Path) -> None:
        torch.save({"folds": [fold.model.state_dict() for fold in folds]}, path)

    for epoch in range(reporter.restore(state.load), ctx.max_epochs + 1):
        # train_loss: the weighted, label-smoothed cross-entropy the folds minimise (without the L1 term)
        train_losses = [fold.train_epoch(int(config["batch_size"])) for fold in folds]
        per_fold = [fold.validate(data) for fold in folds]
        row = {key: float(np.mean([scores[key] for scores in per_fold])) for key in per_fold[0]}
        row[M.TRAIN_LOSS] = float(np.mean(train_losses))
        if reporter.epoch(epoch, row, save, state.save):
            return


def evaluate(config: dict[str, Any], data, ctx: TrialContext, weights: Path, split: str = "test") -> dict[str, float]:
    """Score the best epoch's K fold models on ``split``: logits averaged over folds, then the majority vote."""
    if split not in data.splits:
        raise ValueError(f"unknown split {split!r}; accepted: {', '.join(data.splits)}")
    states = torch.load(weights, map_location=ctx.device, weights_only=True)["folds"]
    if len(states) != data.meta["cv_folds"]:
        raise ValueError(f"{weights} holds {len(states)} fold models; the data has {data.meta['cv_folds']} folds")
    subjects, logits, subj = data.splits[split], [], None
    for k, state in enumerate(states):
        windows = _Windows(data, config, data.splits[f"fold{k}_train"], ctx.device)
        model = RecurrentClassifier(windows.n_features, config, len(data.meta["class_names"])).to(ctx.device)
        model.load_state_dict(state)
        subj, start = windows.index(subjects)
        logits.append(_logits(model, windows, subj, start))
    return _scores(torch.stack(logits).mean(dim=0), subj, data, subjects, split)


def example_inputs(data, n: int) -> np.ndarray:
    """The model's input: whole subjects' series [subjects, steps, features] (the data has no ``x``), here the
    first ``n`` test subjects."""
    return data.arrays["series"][data.splits["test"][:n]]


def inference_state(config: dict[str, Any], data, ctx: TrialContext) -> dict[str, Any]:
    """What ``predict`` needs besides the weights (trainables.family.ServingFamily): each fold's preprocessor,
    fitted on the fold's training subjects as in training, and the class count."""
    pca = float(config["pca_variance"]) if config["joint_pca"] else None
    meta, series = data.meta, data.arrays["series"]
    fits = [data.splits[f"fold{k}_train"] for k in range(int(meta["cv_folds"]))]
    preps = [SeriesPreprocessor(meta["feature_names"], meta["joint_groups"], pca).fit(series[rows]) for rows in fits]
    return {"preprocessors": preps, "n_classes": len(meta["class_names"])}


def predict(config: dict[str, Any], state: dict[str, Any], weights: Path, inputs: np.ndarray) -> np.ndarray:
    """Class indices of whole subjects' series [subjects, steps, features] (rows of ``example_inputs``): each
    subject's windows, their logits averaged over the fold models (each after its own fold's preprocessing), then
    the majority vote of the windows' classes, as ``evaluate`` scores them."""
    states = torch.load(weights, map_location="cpu", weights_only=True)["folds"]
    window, stride = int(config["window_size"]), int(config["stride"])
    subjects = np.arange(len(inputs))
    logits = []
    for prep, fold_state in zip(state["preprocessors"], states, strict=True):
        padded, starts = pad_for_windows(prep.transform(np.asarray(inputs)), window, stride)
        model = RecurrentClassifier(padded.shape[2], config, state["n_classes"])
        model.load_state_dict(fold_state)
        subj, start = np.repeat(subjects, len(starts)), np.tile(starts, len(subjects))
        windows = np.stack([padded[s, t : t + window] for s, t in zip(subj, start, strict=True)])
        model.eval()
        with torch.no_grad():
            chunks = range(0, len(windows), EVAL_BATCH)
            logits.append(torch.cat([model(torch.as_tensor(windows[i : i + EVAL_BATCH])) for i in chunks]))
    classes = torch.stack(logits).mean(dim=0).argmax(dim=1).numpy()
    return majority_vote(classes, subj, subjects, state["n_classes"])
