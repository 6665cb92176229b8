"""The MIT-BIH loader, training-set balancing, the 2D beat layout and the two heartbeat models (report 001)."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import recall_score

from tests.helpers.ecg_grid import from_grid
from trainables import ecg
from trainables.balancing import SMOTE_NEIGHBOURS, balance
from trainables.cnn1d_gru import CNN1DGRU
from trainables.cnn2d import GRID, to_grid
from trainables.metrics import as_test
from trainables.reporting import CHECKPOINT_FILE
from tuner import spaces
from tuner.datasets import mitbih
from tuner.errors import DataError
from tuner.trial import make_context

OPTIONS = {"val_fraction": 0.2, "split_seed": 42}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return mitbih.load(None, OPTIONS, tmp_path_factory.mktemp("mitbih"))


def test_generated_files_have_the_kaggle_layout_and_declared_counts(data):
    train_path, test_path = mitbih.find_files(Path(data.source))
    first = train_path.read_text().splitlines()[0].split(",")
    assert len(first) == 188 and first[-1] in {"0.0", "1.0", "2.0", "3.0", "4.0"}
    float(first[0])  # no header: the first cell is a sample value
    _, y_train = mitbih.read_mitbih_csv(train_path)
    _, y_test = mitbih.read_mitbih_csv(test_path)
    assert tuple(np.bincount(y_train)) == mitbih.SYNTHETIC_TRAIN_COUNTS
    assert tuple(np.bincount(y_test)) == mitbih.SYNTHETIC_TEST_COUNTS
    assert np.bincount(y_train).argmax() == 0 and np.mean(y_train == 0) > 0.7  # N is the large majority


def test_beats_are_scaled_to_0_1_start_at_the_r_peak_and_are_zero_padded(data):
    x = data.arrays["x"]
    assert x.shape[1] == 187 and x.min() == 0.0 and x.max() == 1.0
    assert x[:, 0].min() > 0.4 and np.median(x[:, 0]) > 0.8  # a window starts at its R peak
    assert np.all(x.max(axis=1) == 1.0) and np.all(x[:, -1] == 0.0)


def test_splits_val_from_the_train_file_stratified_test_is_the_test_file(data, tmp_path):
    n_train_file = sum(mitbih.SYNTHETIC_TRAIN_COUNTS)
    assert data.synthetic and "synthetic" in data.summary and "164 rows" in data.summary
    train, val, test = data.splits["train"], data.splits["val"], data.splits["test"]
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == n_train_file
    assert np.array_equal(test, np.arange(n_train_file, n_train_file + sum(mitbih.SYNTHETIC_TEST_COUNTS)))
    assert set(data.split("val")["y"]) == set(range(5))
    again = mitbih.load(None, OPTIONS, tmp_path)
    assert np.array_equal(again.splits["val"], val) and again.fingerprint == data.fingerprint


def test_a_user_folder_in_the_kaggle_layout_loads_as_real_data(data, tmp_path):
    source = Path(data.source)
    for name in (mitbih.TRAIN_FILE, mitbih.TEST_FILE):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    real = mitbih.load(tmp_path, OPTIONS, tmp_path / "cache")
    assert not real.synthetic and real.source == str(tmp_path) and "synthetic" not in real.summary
    assert real.fingerprint == data.fingerprint
    np.testing.assert_array_equal(real.arrays["x"], data.arrays["x"])
    assert not (tmp_path / "cache").exists()  # nothing generated when a folder is given


def test_synthetic_beats_are_learnable_but_not_trivial(data):
    """A plain random forest clearly beats the constant N predictor (macro recall 0.2) but stays well below 1."""
    train, test = data.split("train"), data.split("test")
    forest = RandomForestClassifier(200, class_weight="balanced", random_state=0).fit(train["x"], train["y"])
    recall = recall_score(test["y"], forest.predict(test["x"]), average="macro")
    assert 0.5 < recall < 0.97


@pytest.mark.parametrize("method", ["none", "oversampled", "smote"])
def test_balancing_touches_only_the_training_split(data, method):
    arrays_before = {k: v.copy() for k, v in data.arrays.items()}
    splits = ecg.prepared_splits({"balancing": method}, data, seed=0)
    for part in ("val", "test"):
        original = data.split(part)
        np.testing.assert_array_equal(splits[part]["x"], original["x"])
        np.testing.assert_array_equal(splits[part]["y"], original["y"])
    for key, value in arrays_before.items():
        np.testing.assert_array_equal(data.arrays[key], value)
    original_train = data.split("train")
    counts = np.bincount(splits["train"]["y"], minlength=5)
    n = len(original_train["y"])
    # the real training rows come first and unchanged; resampling only appends
    np.testing.assert_array_equal(splits["train"]["x"][:n], original_train["x"])
    if method == "none":
        assert len(splits["train"]["y"]) == n
    else:
        assert set(counts) == {np.bincount(original_train["y"]).max()}  # every class at the majority's count
        assert splits["train"]["x"].shape[1:] == (187,) and splits["train"]["x"].dtype == np.float32


def test_smote_makes_new_beats_and_oversampling_repeats_real_ones(data):
    train = data.split("train")
    x_over, _ = balance(train["x"], train["y"], "oversampled", seed=0)
    x_smote, _ = balance(train["x"], train["y"], "smote", seed=0)
    n = len(train["y"])
    real = {row.tobytes() for row in train["x"]}
    assert all(row.tobytes() in real for row in x_over[n:])
    assert not any(row.tobytes() in real for row in x_smote[n:])


def test_smote_on_a_class_too_small_is_a_clear_error():
    x = np.random.default_rng(0).random((30, 187), dtype=np.float32)
    y = np.array([0] * 25 + [1] * SMOTE_NEIGHBOURS)
    with pytest.raises(ValueError, match=f"SMOTE needs more than 5 training rows of every class; class 1 has {5}"):
        balance(x, y, "smote", seed=0)
    with pytest.raises(ValueError, match="balancing 'undersampled' is not one of none, oversampled, smote"):
        balance(x, y, "undersampled", seed=0)


def test_balanced_class_weights_are_inverse_to_the_training_frequencies(data):
    y = data.split("train")["y"]
    weights = ecg.loss_function({"class_weights": "balanced"}, y, 5, "cpu").weight.numpy()
    counts = np.bincount(y)
    np.testing.assert_allclose(weights * counts, len(y) / 5, rtol=1e-5)
    assert ecg.loss_function({}, y, 5, "cpu").weight is None


def test_the_2d_layout_round_trips_and_is_row_major():
    beats = torch.arange(3 * 187, dtype=torch.float32).reshape(3, 187)
    images = to_grid(beats)
    assert images.shape == (3, 1, *GRID) == (3, 1, 17, 11)
    assert torch.equal(images[1, 0, 2], beats[1, 22:33])  # row r holds samples 11r .. 11r + 10
    assert torch.equal(from_grid(images), beats)
    np.testing.assert_array_equal(from_grid(to_grid(beats.numpy())), beats.numpy())
    with pytest.raises(ValueError, match="a beat of 188 samples does not fill a 17x11 grid"):
        to_grid(torch.zeros(2, 188))


@pytest.mark.parametrize("gru_input", ["flattened", "steps"])
def test_the_gru_reads_one_vector_or_the_pooled_steps(gru_input):
    config = {"hidden": 8, "num_blocks": 1, "gru_hidden": 16, "num_layers": 2, "dropout": 0.2, "layer_norm": True}
    model = CNN1DGRU(187, 5, {**config, "gru_input": gru_input}).eval()
    seen = []
    model.gru.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    assert model(torch.rand(4, 187)).shape == (4, 5)
    assert seen == [(4, 1, 8) if gru_input == "flattened" else (4, 93, 8)]


def test_imbalanced_training_with_class_weights_trains_and_scores_the_test_file(data, tmp_path):
    """The non-report path end to end: no resampling, weighted loss, the GRU over steps, then test figures."""
    spec = spaces.get("ecg_cnngru")
    config = {**spec.report_config, "hidden": 32, "num_blocks": 1, "gru_hidden": 32, "gru_input": "steps",
              "balancing": "none", "class_weights": "balanced"}  # fmt: skip
    config = spec.validate_config(config)
    rows, checkpoints = [], []
    ctx = make_context(
        spec, seed=0, device="cpu", report=lambda row, ckpt: (rows.append(row), checkpoints.append(ckpt))
    )
    ctx = type(ctx)(**{**ctx.__dict__, "max_epochs": 1})
    module = importlib.import_module(spec.trainable)
    module.train(config, data, ctx)
    assert len(rows) == 1 and np.isfinite(rows[0]["train_loss"]) and rows[0]["end_reason"] == "completed"
    weights = checkpoints[0] / CHECKPOINT_FILE
    test = module.evaluate(config, data, ctx, weights)
    assert set(test) == {"test_loss"} | {as_test(m) for m in spec.metrics if m.startswith("val_") and m != "val_loss"}
    assert 0.0 <= test["test_macro_recall"] <= 1.0


def _folder_with(tmp_path, train_text: str, test_text: str | None = "0.5," * 187 + "0.0\n"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / mitbih.TRAIN_FILE).write_text(train_text)
    if test_text is not None:
        (tmp_path / mitbih.TEST_FILE).write_text(test_text)
    return tmp_path


ROW = ",".join(["0.5"] * 187)


@pytest.mark.parametrize(
    ("train_text", "message"),
    [
        ("", "file is empty"),
        (ROW + "\n", "rows have 187 values; expected 188"),
        ("a," + ROW + "\n" + ROW + ",0.0\n", "row 1, column 1 'a' is not a number \\(the files have no header row\\)"),
        (ROW + ",0.0\n" + ROW.replace("0.5", "x", 1) + ",1.0\n", "row 2, column 1 'x' is not a number"),
        (ROW + ",5.0\n", "row 1: class 5.0 is not one of 0.0..4.0"),
        (ROW + ",1.5\n", "row 1: class 1.5 is not one of 0.0..4.0"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, train_text, message):
    folder = _folder_with(tmp_path, train_text)
    with pytest.raises(DataError, match=message) as info:
        mitbih.load(folder, OPTIONS, tmp_path / "cache")
    assert str(folder / mitbih.TRAIN_FILE) in str(info.value) and "\n" not in str(info.value)


def test_a_missing_class_in_the_train_file_is_named(tmp_path):
    folder = _folder_with(tmp_path, "".join(f"{ROW},{c}.0\n" for c in (0, 0, 1, 1, 2, 2, 3, 3)))
    with pytest.raises(DataError, match=f"{mitbih.TRAIN_FILE}: class Q has 0 rows; need at least 2"):
        mitbih.load(folder, OPTIONS, tmp_path / "cache")


def test_missing_folder_file_instead_of_folder_and_missing_test_file_are_named(tmp_path):
    with pytest.raises(DataError, match="absent: no such folder; expected the folder holding mitbih_train.csv"):
        mitbih.load(tmp_path / "absent", OPTIONS, tmp_path)
    folder = _folder_with(tmp_path / "one", ROW + ",0.0\n", test_text=None)
    with pytest.raises(DataError, match="is a file; pass the folder holding"):
        mitbih.load(folder / mitbih.TRAIN_FILE, OPTIONS, tmp_path)
    with pytest.raises(DataError, match=f"{folder}: has no mitbih_test.csv"):
        mitbih.load(folder, OPTIONS, tmp_path)


def test_an_unknown_loader_option_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown mitbih option\\(s\\) val_frac; accepted: val_fraction, split_seed"):
        mitbih.load(None, {"val_frac": 0.1}, tmp_path)
