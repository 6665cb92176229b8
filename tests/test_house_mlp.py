"""house_mlp: the Kaggle train.csv loader and its errors, the Gaussian NLL, NLLs in dollars, learnability."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from trainables import regression_mlp
from trainables.reporting import CHECKPOINT_FILE
from tuner import spaces
from tuner.datasets import house_prices
from tuner.errors import DataError, TunerError
from tuner.trial import make_context

OPTIONS = {"split": (0.7, 0.15, 0.15), "split_seed": 42}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("houses") / house_prices.TRAIN_FILE
    path.write_text(house_prices.generate_train_csv())
    return path


def _write(tmp_path, text):
    path = tmp_path / "train.csv"
    path.write_text(text)
    return path


def _edit(train_csv, row: int, column: str, value: str) -> str:
    """The file's text with one cell (data row ``row``, 0-based) replaced."""
    lines = train_csv.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def test_gaussian_nll_is_the_closed_formula():
    mean = torch.tensor([1.0, 0.0, -2.0])
    log_var = torch.tensor([math.log(4.0), 0.0, math.log(0.25)])
    target = torch.tensor([3.0, 0.5, -2.0])
    # 0.5 * (log 2pi + log var + (y - mu)^2 / var), by hand for each of the three
    by_hand = [
        0.5 * (math.log(2 * math.pi) + math.log(4.0) + 4.0 / 4.0),
        0.5 * (math.log(2 * math.pi) + 0.0 + 0.25 / 1.0),
        0.5 * (math.log(2 * math.pi) + math.log(0.25) + 0.0),
    ]
    assert regression_mlp.gaussian_nll(mean, log_var, target).item() == pytest.approx(np.mean(by_hand), rel=1e-6)
    assert regression_mlp.gaussian_nll(mean[:1], log_var[:1], target[:1]).item() == pytest.approx(by_hand[0])


@pytest.mark.parametrize("kind", ["standard", "log"])
def test_nll_in_dollars_is_the_density_of_the_price(kind):
    """NLL(scaled) minus the log-Jacobian equals the Gaussian / log-normal density of the price itself."""
    rng = np.random.default_rng(0)
    prices = rng.uniform(60_000, 500_000, 50)
    scaler = regression_mlp.TargetScaler(kind, prices)
    np.testing.assert_allclose(scaler.inverse(scaler.forward(prices)), prices, rtol=1e-5)
    mu, log_var = rng.normal(0, 0.5, 50), rng.normal(-1, 0.3, 50)
    z = torch.as_tensor(scaler.forward(prices), dtype=torch.float64)
    nll_z = torch.nn.GaussianNLLLoss(full=True, reduction="none")(
        torch.as_tensor(mu), z, torch.as_tensor(np.exp(log_var))
    )
    ours = nll_z.numpy() - scaler.log_jacobian(prices)
    sd = np.exp(log_var / 2) * scaler.sd
    if kind == "standard":
        direct = -stats.norm.logpdf(prices, loc=mu * scaler.sd + scaler.mean, scale=sd)
    else:
        direct = -stats.lognorm.logpdf(prices, s=sd, scale=np.exp(mu * scaler.sd + scaler.mean))
    np.testing.assert_allclose(ours, direct, rtol=1e-5)


def test_unknown_target_scaling_is_named():
    with pytest.raises(ValueError, match="target_scaling 'robust' is not one of \\('standard', 'log'\\)"):
        regression_mlp.TargetScaler("robust", np.array([1.0, 2.0]))


def test_generated_file_has_the_kaggle_layout_and_loads(train_csv, tmp_path):
    header = train_csv.read_text().splitlines()[0]
    assert header.startswith("Id,MSSubClass,MSZoning,LotFrontage,") and len(header.split(",")) == 81
    assert ",NA," in train_csv.read_text()  # other columns carry NA, which the loader must ignore
    data = house_prices.load(train_csv, OPTIONS, tmp_path)
    assert not data.synthetic and data.arrays["x"].shape == (1460, 4)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 1021, "val": 219, "test": 220}
    assert len(np.intersect1d(data.splits["train"], data.splits["test"])) == 0
    assert house_prices.load(train_csv.parent, OPTIONS, tmp_path).fingerprint == data.fingerprint  # folder works


def test_without_a_path_synthetic_data_is_generated_once_and_flagged(tmp_path):
    data = house_prices.load(None, OPTIONS, tmp_path)
    assert data.synthetic and "SYNTHETIC" in data.summary and (tmp_path / house_prices.SYNTHETIC_FILE).exists()
    assert house_prices.load(None, OPTIONS, tmp_path).fingerprint == data.fingerprint


def test_rows_with_na_in_the_used_columns_are_left_out_and_counted(train_csv, tmp_path):
    text = _edit(train_csv, 5, "TotalBsmtSF", "NA")
    path = _write(tmp_path, text)
    path.write_text(_edit(path, 9, "SalePrice", ""))
    data = house_prices.load(path, OPTIONS, tmp_path)
    assert len(data.arrays["y"]) == 1458 and data.meta["dropped_rows"] == 2
    assert "2 row(s) with NA in those columns left out" in data.summary


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        (3, "GrLivArea", "big", "row 5, column GrLivArea: 'big' is not a number"),
        (0, "SalePrice", "0", "row 2, column SalePrice: 0 is not positive"),
        (7, "YearBuilt", "-5", "row 9, column YearBuilt: -5 is not non-negative"),
    ],
)
def test_bad_values_are_named_with_row_and_column(train_csv, tmp_path, row, column, value, message):
    path = _write(tmp_path, _edit(train_csv, row, column, value))
    with pytest.raises(DataError, match=message) as info:
        house_prices.read_train_csv(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_columns_files_and_bad_options_are_named(train_csv, tmp_path):
    test_like = train_csv.read_text().replace(",SalePrice\n", "\n", 1)
    with pytest.raises(DataError, match="missing column\\(s\\) SalePrice \\(Kaggle's test.csv has no prices"):
        house_prices.read_train_csv(_write(tmp_path, test_like))
    renamed = train_csv.read_text().replace(",GrLivArea,", ",LivingArea,", 1)
    with pytest.raises(DataError, match="missing column\\(s\\) GrLivArea$"):
        house_prices.read_train_csv(_write(tmp_path, renamed))
    with pytest.raises(DataError, match="absent.csv: no such file"):
        house_prices.read_train_csv(tmp_path / "absent.csv")
    with pytest.raises(DataError, match="file is empty"):
        house_prices.read_train_csv(_write(tmp_path, ""))
    with pytest.raises(TunerError, match="split \\[0.5, 0.5, 0.5\\]: expected three positive fractions"):
        house_prices.load(train_csv, {"split": (0.5, 0.5, 0.5)}, tmp_path)
    with pytest.raises(TunerError, match="unknown option\\(s\\) seed; accepted: split, split_seed"):
        house_prices.load(train_csv, {"seed": 1}, tmp_path)


def test_gaussian_loss_reports_every_metric_and_evaluates_in_dollars(train_csv, tmp_path):
    spec = spaces.get("house_mlp")
    data = house_prices.load(train_csv, OPTIONS, tmp_path)
    config = {**spec.report_config, "loss": "gaussian_nll", "target_scaling": "log"}
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append((row, ckpt)))
    ctx = type(ctx)(**{**ctx.__dict__, "max_epochs": 3})
    regression_mlp.train(spec.validate_config(config), data, ctx)
    assert len(rows) == 3 and all(isinstance(rows[-1][0][m], float) for m in spec.metrics)
    checkpoint = next(ckpt for _, ckpt in reversed(rows) if ckpt is not None) / CHECKPOINT_FILE
    test = regression_mlp.evaluate(config, data, ctx, checkpoint)
    assert set(test) == {"test_loss", "test_mse", "test_rmse", "test_mae", "test_nll"}
    assert test["test_rmse"] == pytest.approx(math.sqrt(test["test_mse"]))
    assert 1_000 < test["test_rmse"] < 1_000_000  # dollars, not scaled units


def test_synthetic_data_is_learnable_but_not_trivial(tmp_path):
    """The report's config, 60 epochs: far below a constant prediction's RMSE, yet above the noise floor."""
    spec = spaces.get("house_mlp")
    data = house_prices.load(None, spec.data_options, tmp_path)
    val = data.split("val")
    constant_rmse = float(np.sqrt(np.mean((val["y"] - data.split("train")["y"].mean()) ** 2)))
    truth = house_prices.price(*val["x"].astype(np.float64).T)
    noise_floor = float(np.sqrt(np.mean((val["y"] - truth) ** 2)))
    rows = []
    ctx = make_context(spec, seed=0, device="cpu", report=lambda row, ckpt: rows.append(row))
    ctx = type(ctx)(**{**ctx.__dict__, "max_epochs": 60})
    regression_mlp.train(spec.active_config(spec.report_config), data, ctx)
    best = min(row["val_rmse"] for row in rows)
    assert best < 0.5 * constant_rmse, (best, constant_rmse)
    assert best > 0.8 * noise_floor, (best, noise_floor)
