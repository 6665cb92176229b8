"""The Steel Plates Faults loader on real files in both real layouts, and its one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.steel_layouts import to_uci_csv
from tuner.datasets import steel
from tuner.errors import DataError

BINARY = {"task": "binary", "split": (0.9, 0.05, 0.05), "split_seed": 42}
MULTI = {"task": "multiclass", "split": (0.7, 0.15, 0.15), "split_seed": 42}


def test_generated_file_has_the_openml_header_and_real_class_counts(steel_openml_csv):
    header = steel_openml_csv.read_text().splitlines()[0]
    assert header == ",".join(steel.OPENML_COLUMNS)
    _, faults = steel.read_steel_csv(steel_openml_csv)
    assert tuple(np.bincount(faults)) == steel.REAL_COUNTS


def test_both_layouts_load_to_the_same_arrays(steel_openml_csv, tmp_path):
    uci = tmp_path / "Faults.csv"
    uci.write_text(to_uci_csv(steel_openml_csv))
    assert uci.read_text().startswith("X_Minimum,X_Maximum,")
    assert ",True," in uci.read_text() or ",False," in uci.read_text()
    x1, y1 = steel.read_steel_csv(steel_openml_csv)
    x2, y2 = steel.read_steel_csv(uci)
    np.testing.assert_allclose(x1, x2, rtol=1e-5)
    np.testing.assert_array_equal(y1, y2)


def test_arff_class_coding_1_2_is_accepted(steel_openml_csv, tmp_path):
    lines = steel_openml_csv.read_text().splitlines()
    recoded = [lines[0]] + [
        line[: line.rfind(",")] + "," + str(int(line[line.rfind(",") + 1 :]) + 1) for line in lines[1:]
    ]
    path = tmp_path / "arff.csv"
    path.write_text("\n".join(recoded) + "\n")
    np.testing.assert_array_equal(steel.read_steel_csv(path)[1], steel.read_steel_csv(steel_openml_csv)[1])


def test_tasks_and_splits(steel_openml_csv, tmp_path):
    binary = steel.load(steel_openml_csv, BINARY, tmp_path)
    assert not binary.synthetic and binary.arrays["y"].sum() == 673
    sizes = {k: len(v) for k, v in binary.splits.items()}
    assert sizes == {"train": 1746, "val": 97, "test": 98}
    assert len(np.intersect1d(binary.splits["train"], binary.splits["test"])) == 0
    multi = steel.load(steel_openml_csv, MULTI, tmp_path)
    assert len(multi.arrays["y"]) == 1941 - 673 and set(multi.arrays["y"]) == set(range(6))
    # stratified: every class appears in validation and test
    for part in ("val", "test"):
        assert set(multi.split(part)["y"]) == set(range(6))
    again = steel.load(steel_openml_csv, MULTI, tmp_path)
    np.testing.assert_array_equal(multi.splits["val"], again.splits["val"])


def test_without_a_path_a_synthetic_file_is_generated_once_and_flagged(tmp_path):
    data = steel.load(None, BINARY, tmp_path)
    assert data.synthetic and (tmp_path / steel.SYNTHETIC_FILE).exists()
    assert steel.load(None, BINARY, tmp_path).fingerprint == data.fingerprint


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("a,b,c\n1,2,3\n", "match neither layout"),
        (",".join(steel.OPENML_COLUMNS[:-1]) + "\n", "missing column\\(s\\) Class"),
        (",".join(steel.OPENML_COLUMNS) + "\n", "has a header but no data rows"),
    ],
)
def test_bad_files_give_one_line_errors_naming_the_file(tmp_path, text, message):
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError, match=message) as info:
        steel.read_steel_csv(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unknown_fault_label_is_named(steel_openml_csv, tmp_path):
    uci = to_uci_csv(steel_openml_csv).replace(",Bumps\n", ",Scratches\n", 1)
    with pytest.raises(DataError, match="unknown Fault label\\(s\\) Scratches; accepted: Pastry"):
        steel.read_steel_csv(_write(tmp_path, "uci.csv", uci))


def test_non_numeric_value_names_row_and_column(steel_openml_csv, tmp_path):
    lines = steel_openml_csv.read_text().splitlines()
    lines[3] = "oops" + lines[3][lines[3].index(",") :]
    with pytest.raises(DataError, match="row 4, column V1: 'oops' is not a number"):
        steel.read_steel_csv(_write(tmp_path, "nan.csv", "\n".join(lines)))


def test_missing_path_is_named(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        steel.read_steel_csv(tmp_path / "absent.csv")
