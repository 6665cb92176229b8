"""The ESL USPS loader, its embedded default (scikit-learn digits in the ESL layout) and the digits CNN (report 004)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from trainables import digits_cnn
from trainables.loop import train_epoch
from tuner import spaces
from tuner.datasets import usps
from tuner.errors import DataError
from tuner.trial import make_context

OPTIONS = {"val_fraction": 0.2, "split_seed": 42}


def _line(label: str, values: list[str]) -> str:
    return " ".join([label, *values]) + " \n"  # the ESL files end each line with a space


def _tiny_esl() -> str:
    """Two hand-written digits: a 6 that is all background but pixel (1, 2) and a 0 with a bright last pixel."""
    six = ["-1.0000"] * 256
    six[1 * 16 + 2] = "0.5000"
    zero = ["-0.2500"] * 255 + ["1.0000"]
    return _line("6.0000", six) + _line("0.0000", zero)


def test_the_esl_parser_reads_labels_and_row_major_16x16_values(tmp_path):
    plain = tmp_path / "zip.train"
    plain.write_text(_tiny_esl())
    packed = tmp_path / "zip.train.gz"
    packed.write_bytes(gzip.compress(_tiny_esl().encode()))
    for path in (plain, packed):
        images, labels = usps.read_esl_file(path)
        assert images.shape == (2, 16, 16) and images.dtype == np.float32
        assert labels.tolist() == [6, 0]
        assert images[0, 1, 2] == 0.5 and np.count_nonzero(images[0] != -1.0) == 1
        assert images[1, 15, 15] == 1.0 and images[1, 0, 0] == -0.25


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    cache = tmp_path_factory.mktemp("usps")
    return usps.load(None, OPTIONS, cache), cache


def test_the_default_is_sklearn_digits_in_the_esl_layout_and_flagged(generated):
    data, cache = generated
    folder = cache / usps.SYNTHETIC_DIR
    assert data.synthetic and "NOT USPS" in data.summary and "scikit-learn" in data.summary
    with gzip.open(folder / "zip.train.gz", "rt") as fh:
        first = fh.readline().split()
    assert len(first) == 257 and first[0].endswith(".0000") and first[1] == "-1.0000"
    n_train, n_test = len(data.splits["train"]) + len(data.splits["val"]), len(data.splits["test"])
    assert n_train + n_test == 1797  # every scikit-learn digit, once
    assert abs(n_test / (n_train + n_test) - 2007 / 9298) < 0.01  # USPS's train/test proportion
    x = data.arrays["x"]
    assert x.shape[1:] == (16, 16) and x.min() == -1.0 and x.max() <= 1.0
    assert set(data.split("val")["y"]) == set(range(10)) and set(data.split("test")["y"]) == set(range(10))
    mtime = (folder / "zip.train.gz").stat().st_mtime_ns
    again = usps.load(None, OPTIONS, cache)  # cached: not written again
    assert again.fingerprint == data.fingerprint and (folder / "zip.train.gz").stat().st_mtime_ns == mtime


def test_the_default_digits_are_learnable_but_not_trivial(generated):
    data, _ = generated
    train, test = data.split("train"), data.split("test")
    model = LogisticRegression(max_iter=300).fit(train["x"].reshape(len(train["y"]), -1), train["y"])
    accuracy = model.score(test["x"].reshape(len(test["y"]), -1), test["y"])
    assert 0.8 < accuracy < 0.995


def test_a_real_layout_folder_loads_plain_files_and_prefers_gz(tmp_path, generated):
    data, cache = generated
    folder = tmp_path / "esl"
    folder.mkdir()
    for part in ("train", "test"):
        with gzip.open(cache / usps.SYNTHETIC_DIR / f"zip.{part}.gz", "rt") as fh:
            (folder / f"zip.{part}").write_text(fh.read())
    plain = usps.load(folder, OPTIONS, tmp_path / "cache")
    assert not plain.synthetic and plain.source == str(folder) and "NOT USPS" not in plain.summary
    np.testing.assert_array_equal(plain.arrays["x"], data.arrays["x"])
    np.testing.assert_array_equal(plain.splits["val"], data.splits["val"])
    (folder / "zip.test.gz").write_bytes(gzip.compress(_tiny_esl().encode()))
    assert len(usps.load(folder, OPTIONS, tmp_path / "cache").splits["test"]) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("6.0000 " + "0.0 " * 255 + "\n", "line 1 has 256 values; expected 257"),
        ("6.0000 " + "0.0 " * 255 + "abc\n", "line 1: 'abc' is not a number"),
        ("10.0000 " + "0.0 " * 256 + "\n", "line 1: label '10.0000' is not a digit 0..9"),
        ("6.5000 " + "0.0 " * 256 + "\n", "line 1: label '6.5000' is not a digit 0..9"),
        ("6.0000 " + "0.0 " * 256 + "\n" + "6.0000 " + "0.0 " * 255 + "1.5\n", "line 2: grey value '1.5' is outside"),
        ("6.0000 " + "nan " * 256 + "\n", "line 1: grey value 'nan' is outside"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "zip.train"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        usps.read_esl_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_corrupt_gz_is_named(tmp_path):
    path = tmp_path / "zip.train.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=f"{path}: not a readable ESL text file"):
        usps.read_esl_file(path)


def test_missing_folder_file_instead_of_folder_and_missing_test_file_are_named(tmp_path):
    with pytest.raises(DataError, match="absent: no such folder; expected the folder holding zip.train.gz"):
        usps.load(tmp_path / "absent", OPTIONS, tmp_path)
    (tmp_path / "zip.train").write_text(_tiny_esl())
    with pytest.raises(DataError, match="zip.train: is a file; pass the folder holding"):
        usps.load(tmp_path / "zip.train", OPTIONS, tmp_path)
    with pytest.raises(DataError, match=f"{tmp_path}: has no zip.test.gz or zip.test"):
        usps.load(tmp_path, OPTIONS, tmp_path)


def test_an_unknown_loader_option_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown usps option\\(s\\) seed; accepted: val_fraction, split_seed"):
        usps.load(None, {"seed": 1}, tmp_path)


def test_mse_on_one_hot_is_the_squared_distance_of_the_softmax_to_the_label():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([0, 2])
    probs = logits.softmax(dim=1)
    expected = ((probs - torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])) ** 2).mean()
    assert torch.isclose(digits_cnn.loss_value("mse", logits, target), expected)
    assert torch.isclose(
        digits_cnn.loss_value("cross_entropy", logits, target), torch.nn.functional.cross_entropy(logits, target)
    )
    with pytest.raises(ValueError, match="loss 'hinge' is not one of cross_entropy, mse"):
        digits_cnn.loss_value("hinge", logits, target)


def test_the_mse_loss_path_trains(generated):
    """Three epochs with MSE on one-hot targets: the training loss falls and validation beats chance (0.1)."""
    data, _ = generated
    spec = spaces.get("usps_cnn")
    config = spec.validate_config({**spec.report_config, "n_conv": 1, "lr": 1e-3, "loss": "mse"})
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append(row))
    digits_cnn.train(config, data, type(ctx)(**{**ctx.__dict__, "max_epochs": 3}))
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] and rows[-1]["val_accuracy"] > 0.3
    assert all(r["val_loss"] < 0.1 for r in rows)  # an MSE of probabilities, not a cross-entropy


def test_the_report_configs_first_epoch_leaves_no_batch_stuck_on_a_wrong_class(generated):
    """Adam at 0.01 with MSE on the softmax, seed 0: no more than a tenth of any batch sits on a wrong class at
    softmax > 0.99, where the MSE's gradient vanishes. With torch's BatchNorm scale of 1 in the last block (see
    trainables.digits_cnn) two fifths of a batch did in this epoch, and on USPS every digit at seed 0."""
    data, _ = generated
    config = spaces.get("usps_cnn").report_config
    torch.manual_seed(0)
    model = digits_cnn.DigitsCNN(
        config["n_conv"], config["width"], config["activation"], config["dropout"], side=16, n_classes=10
    )
    stuck = []

    def loss_fn(logits, target):
        probs = logits.detach().softmax(dim=1)
        stuck.append(((probs.max(dim=1).values > 0.99) & (probs.argmax(dim=1) != target)).float().mean().item())
        return digits_cnn.loss_value(config["loss"], logits, target)

    train = data.split("train")
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    train_epoch(
        model,
        optimizer,
        torch.as_tensor(train["x"]),
        torch.as_tensor(train["y"]),
        config["batch_size"],
        torch.Generator().manual_seed(0),
        loss_fn,
        "cpu",
    )
    assert len(stuck) > 20 and max(stuck) <= 0.1


@pytest.mark.parametrize("n_conv", [1, 2, 3, 4])
def test_every_depth_maps_16x16_digits_to_10_logits(n_conv):
    model = digits_cnn.DigitsCNN(n_conv, 64, "tanh", 0.1, side=16, n_classes=10).eval()
    assert model(torch.rand(5, 16, 16)).shape == (5, 10)
