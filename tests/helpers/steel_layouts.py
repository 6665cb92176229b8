"""The steel plates data in the UCI named layout, from a file in OpenML's: tests check both layouts load alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tuner.datasets.steel import FAULTS, FEATURES, read_steel_csv


def to_uci_csv(openml_csv_path: Path) -> str:
    """Rewrite an OpenML-layout file in the UCI named layout."""
    features, faults = read_steel_csv(openml_csv_path)
    table = pd.DataFrame(features.astype(np.float64), columns=list(FEATURES))
    for flag in ("TypeOfSteel_A300", "TypeOfSteel_A400"):
        table[flag] = table[flag].map({1.0: "True", 0.0: "False"})
    table["Fault"] = [FAULTS[i] for i in faults]
    return table.to_csv(index=False, float_format="%.6g")
