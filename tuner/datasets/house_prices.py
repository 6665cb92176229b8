"""Kaggle House Prices (report 004, regression part): four features -> SalePrice.

``--data`` is Kaggle's ``train.csv`` (or the folder holding it). Of its 81 columns only ``OverallQual``,
``YearBuilt``, ``TotalBsmtSF``, ``GrLivArea`` and ``SalePrice`` are read, as in the report; the others are
ignored. Those five must be present and numeric. A row with a missing value (``NA``) in one of them is left
out and counted in the summary (the real ``train.csv`` has none there); any other non-number is an error
naming the row and column. Prices must be positive and features non-negative. The split is a seeded random
0.7/0.15/0.15 (the report does not give its split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tuner.datasets.base import LoadedData, file_fingerprint, write_atomically
from tuner.errors import DataError, TunerError, first_line

TRAIN_FILE = "train.csv"
FEATURES = ("OverallQual", "YearBuilt", "TotalBsmtSF", "GrLivArea")
TARGET = "SalePrice"
NUMERIC_COLUMNS = (
    "Id", "MSSubClass", "LotFrontage", "LotArea", "OverallQual", "OverallCond", "YearBuilt", "YearRemodAdd",
    "MasVnrArea", "BsmtFinSF1", "BsmtFinSF2", "BsmtUnfSF", "TotalBsmtSF", "1stFlrSF", "2ndFlrSF", "LowQualFinSF",
    "GrLivArea", "BsmtFullBath", "BsmtHalfBath", "FullBath", "HalfBath", "BedroomAbvGr", "KitchenAbvGr",
    "TotRmsAbvGrd", "Fireplaces", "GarageYrBlt", "GarageCars", "GarageArea", "WoodDeckSF", "OpenPorchSF",
    "EnclosedPorch", "3SsnPorch", "ScreenPorch", "PoolArea", "MiscVal", "MoSold", "YrSold", "SalePrice",
)  # fmt: skip
KAGGLE_COLUMNS = (
    "Id", "MSSubClass", "MSZoning", "LotFrontage", "LotArea", "Street", "Alley", "LotShape", "LandContour",
    "Utilities", "LotConfig", "LandSlope", "Neighborhood", "Condition1", "Condition2", "BldgType", "HouseStyle",
    "OverallQual", "OverallCond", "YearBuilt", "YearRemodAdd", "RoofStyle", "RoofMatl", "Exterior1st",
    "Exterior2nd", "MasVnrType", "MasVnrArea", "ExterQual", "ExterCond", "Foundation", "BsmtQual", "BsmtCond",
    "BsmtExposure", "BsmtFinType1", "BsmtFinSF1", "BsmtFinType2", "BsmtFinSF2", "BsmtUnfSF", "TotalBsmtSF",
    "Heating", "HeatingQC", "CentralAir", "Electrical", "1stFlrSF", "2ndFlrSF", "LowQualFinSF", "GrLivArea",
    "BsmtFullBath", "BsmtHalfBath", "FullBath", "HalfBath", "BedroomAbvGr", "KitchenAbvGr", "KitchenQual",
    "TotRmsAbvGrd", "Functional", "Fireplaces", "FireplaceQu", "GarageType", "GarageYrBlt", "GarageFinish",
    "GarageCars", "GarageArea", "GarageQual", "GarageCond", "PavedDrive", "WoodDeckSF", "OpenPorchSF",
    "EnclosedPorch", "3SsnPorch", "ScreenPorch", "PoolArea", "PoolQC", "Fence", "MiscFeature", "MiscVal",
    "MoSold", "YrSold", "SaleType", "SaleCondition", "SalePrice",
)  # fmt: skip
OPTIONS = {"split", "split_seed"}
MIN_ROWS = 20
SYNTHETIC_FILE = "house_prices_train_synthetic.csv"
SYNTHETIC_SEED = 1460
SYNTHETIC_ROWS = 1460


def load(path: Path | None, options: dict[str, Any], cache_dir: Path) -> LoadedData:
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise TunerError(
            f"house_prices: unknown option(s) {', '.join(unknown)}; accepted: {', '.join(sorted(OPTIONS))}"
        )
    synthetic = path is None
    if synthetic:
        path = cache_dir / SYNTHETIC_FILE
        if not path.exists():
            write_atomically(path, generate_train_csv(seed=SYNTHETIC_SEED))
    path = Path(path)
    if path.is_dir():
        path = path / TRAIN_FILE
    x, y, dropped = read_train_csv(path)
    splits = random_split(len(y), tuple(options.get("split", (0.7, 0.15, 0.15))), int(options.get("split_seed", 42)))
    kind = "SYNTHETIC houses (generated, not the Kaggle data)" if synthetic else "houses"
    return LoadedData(
        arrays={"x": x, "y": y},
        splits=splits,
        meta={"feature_names": FEATURES, "target": TARGET, "dropped_rows": dropped},
        source=str(path),
        synthetic=synthetic,
        fingerprint=file_fingerprint(path),
        summary=(
            f"{len(y)} {kind}, {', '.join(FEATURES)} -> {TARGET} (mean ${y.mean():,.0f}, sd ${y.std():,.0f}); "
            f"{dropped} row(s) with NA in those columns left out; split train/val/test "
            f"{len(splits['train'])}/{len(splits['val'])}/{len(splits['test'])}"
        ),
    )


def read_train_csv(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Parse Kaggle's train.csv; return (features float32 [n, 4], SalePrice float64 [n], rows left out)."""
    if not path.exists():
        raise DataError(f"{path}: no such file (expected Kaggle House Prices train.csv)")
    try:
        frame = pd.read_csv(path, usecols=lambda c: str(c).strip() in (*FEATURES, TARGET))
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({first_line(exc)})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in (*FEATURES, TARGET) if c not in frame.columns]
    if missing:
        hint = " (Kaggle's test.csv has no prices; use train.csv)" if missing == [TARGET] else ""
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}{hint}")
    values = frame[[*FEATURES, TARGET]].apply(pd.to_numeric, errors="coerce")
    not_number = values.isna() & frame[[*FEATURES, TARGET]].notna()
    if not_number.any().any():
        row, col = np.argwhere(not_number.to_numpy())[0]
        raw = frame[[*FEATURES, TARGET]].iloc[row, col]
        raise DataError(f"{path}: row {row + 2}, column {values.columns[col]}: {raw!r} is not a number")
    complete = values.notna().all(axis=1)
    values = values[complete]
    if len(values) < MIN_ROWS:
        raise DataError(f"{path}: {len(values)} complete rows in {', '.join((*FEATURES, TARGET))}; need {MIN_ROWS}")
    for column in (*FEATURES, TARGET):
        low = values[column] <= 0 if column == TARGET else values[column] < 0
        if low.any():
            row = int(values.index[np.flatnonzero(low.to_numpy())[0]])
            need = "positive" if column == TARGET else "non-negative"
            raise DataError(f"{path}: row {row + 2}, column {column}: {values[column][row]:g} is not {need}")
    return (
        values[list(FEATURES)].to_numpy(dtype=np.float32),
        values[TARGET].to_numpy(dtype=np.float64),
        int((~complete).sum()),
    )


def random_split(n: int, fractions: tuple[float, ...], seed: int) -> dict[str, np.ndarray]:
    """Seeded random train/val/test split of ``n`` rows by the given fractions (they must sum to 1)."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
        raise TunerError(f"split {list(fractions)}: expected three positive fractions summing to 1")
    train, rest = train_test_split(np.arange(n), train_size=fractions[0], random_state=seed)
    val, test = train_test_split(rest, train_size=fractions[1] / (fractions[1] + fractions[2]), random_state=seed)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def price(quality: np.ndarray, year: np.ndarray, basement: np.ndarray, living: np.ndarray) -> np.ndarray:
    """The synthetic data's median price (dollars) of a house: convex in quality, log-linear in living area,
    a premium for recent construction that saturates, diminishing returns on basement area."""
    log_price = (
        11.88
        + 0.10 * (quality - 6)
        + 0.012 * (quality - 6) ** 2
        + 0.50 * np.log(living / 1500)
        + 0.18 / (1 + np.exp(-(year - 1985) / 12))
        + 0.10 * np.log1p(basement / 800)
    )
    return np.exp(log_price)


def generate_train_csv(seed: int = SYNTHETIC_SEED, rows: int = SYNTHETIC_ROWS) -> str:
    """A synthetic train.csv in Kaggle's 81-column layout, as text.

    The four features share a latent "house standard" (better houses are newer and larger, as in the real
    data), with the real file's ranges. SalePrice is ``price(...)`` times log-normal noise whose spread grows
    with quality, so errors in dollars are heteroscedastic (larger for dear houses): the noise alone leaves
    ~$26k RMSE to the true price function, against ~$73k for a constant prediction. The other 76 columns
    hold filler in their real types, with ``NA`` where the real file has it, so the parser meets the real shape.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.0, rows)
    quality = np.clip(np.round(6.1 + 1.2 * z + rng.normal(0, 0.6, rows)), 1, 10)
    year = np.clip(np.round(1971 + 22 * z + rng.normal(0, 20, rows)), 1872, 2010)
    living = np.clip(np.round(np.exp(np.log(1460) + 0.22 * z + rng.normal(0, 0.25, rows))), 334, 5642)
    basement = np.clip(np.round(living * np.exp(rng.normal(-0.35, 0.3, rows))), 0, 6110)
    basement[rng.random(rows) < 0.025] = 0
    noise = rng.normal(0.0, 1.0, rows) * (0.06 + 0.02 * np.clip(quality - 4, 0, None))
    sale = np.round(price(quality, year, basement, living) * np.exp(noise))

    table = {}
    for column in KAGGLE_COLUMNS:
        if column in NUMERIC_COLUMNS:
            table[column] = rng.integers(0, 500, rows).astype(object)
        else:
            table[column] = rng.choice(np.array(["TA", "Gd", "NA"], dtype=object), rows)
    table.update(
        Id=np.arange(1, rows + 1),
        MSSubClass=rng.choice([20, 50, 60, 120], rows),
        LotFrontage=np.where(rng.random(rows) < 0.18, "NA", rng.integers(40, 120, rows).astype(str)),
        MSZoning=rng.choice(["RL", "RM", "FV"], rows),
        Alley=np.where(rng.random(rows) < 0.94, "NA", "Grvl"),
        OverallQual=quality.astype(int),
        YearBuilt=year.astype(int),
        TotalBsmtSF=basement.astype(int),
        GrLivArea=living.astype(int),
        YrSold=rng.integers(2006, 2011, rows),
        SalePrice=sale.astype(int),
    )
    return pd.DataFrame(table, columns=list(KAGGLE_COLUMNS)).to_csv(index=False)
