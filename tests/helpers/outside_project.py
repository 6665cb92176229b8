"""A project of a user's own, written to a folder outside the repository: its space, model family and data loader, as a
user of tuner writes them (only ``tuner``'s public names imported).

The family sleeps each epoch and reports a known score peaking at ``x = 0.7`` (no model to train: the tests measure
the service); with ``import_log`` set, each trial writes where its process imported the family from. Its loader
writes a small JSON file in a cache folder (or reads a given one) and hands the trials an object of its own class
(``Marker``), which reaches them only if the study ships the project's code. ``write_distribution`` makes the
project an installed package whose spaces are registered by entry point."""

from __future__ import annotations

from pathlib import Path

SPACE = """
from tuner import Choice, EarlyStopping, Param, SpaceSpec, Uniform

SPEC = SpaceSpec(
    name="{name}",
    report="none (a user's own space)",
    summary="sleeps each epoch; the score peaks at x = 0.7",
    dataset="{module_prefix}data:load",
    data_options={{"rows": 40}},
    trainable="{module_prefix}family",
    model="none",
    metric="val_score",
    mode="max",
    metrics=("val_loss", "val_score"),
    max_epochs={max_epochs},
    params=(Param("x", Uniform(0.0, 1.0), "where the score peaks at 0.7"),
            Param("kind", Choice(("a", "b")), "a choice that changes nothing")),
    fixed={{"sleep_s": {sleep_s}, "import_log": ""}},
    early_stopping=EarlyStopping("val_loss", "min", patience=1000),
    default_searcher="random",
    default_scheduler="fifo",
)

OTHER = SPEC
"""

FAMILY = """
import json
import time
from pathlib import Path

from tuner import EpochReporter

from {module_prefix}data import Marker


def score(x, epoch):
    return 1.0 - (x - 0.7) ** 2 - 0.5 / (epoch + 1)


def train(config, data, ctx):
    assert isinstance(data.extra["marker"], Marker) and data.extra["marker"].rows == len(data.arrays["x"])
    if ctx.fixed["import_log"]:  # where this trial's process found this module
        with open(ctx.fixed["import_log"], "a") as log:
            log.write(__file__ + "\\n")
    x = float(config["x"])
    reporter = EpochReporter(ctx)
    first = reporter.restore(lambda path: None)
    for epoch in range(first, ctx.max_epochs + 1):
        time.sleep(float(ctx.fixed["sleep_s"]))
        value = score(x, epoch)
        save = lambda path: path.write_text(json.dumps({{"x": x}}))  # noqa: E731
        state = lambda path: path.write_text("{{}}")  # noqa: E731
        if reporter.epoch(epoch, {{"val_loss": 1.0 - value, "val_score": value}}, save, state):
            return


def evaluate(config, data, ctx, weights, split="test"):
    return {{f"{{split}}_score": score(json.loads(Path(weights).read_text())["x"], ctx.max_epochs)}}
"""

DATA = """
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuner import LoadedData


@dataclass(frozen=True)
class Marker:
    rows: int


def load(path, options, cache_dir):
    synthetic = path is None
    if synthetic:
        path = Path(cache_dir) / "outside.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({{"x": list(range(int(options["rows"])))}}))
    x = np.asarray(json.loads(Path(path).read_text())["x"], dtype=np.float32)
    rows = np.arange(len(x))
    return LoadedData(arrays={{"x": x}}, splits={{"train": rows[::2], "val": rows[1::4], "test": rows[3::4]}},
                      meta={{}}, source=str(path), synthetic=synthetic,
                      fingerprint=hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16],
                      summary=f"{{len(x)}} rows", extra={{"marker": Marker(len(x))}})
"""


def write_project(
    folder: Path, name: str = "outside", sleep_s: float = 0.0, max_epochs: int = 2, package: str | None = None
) -> Path:
    """The project's files in ``folder`` (as a package ``package`` inside it, when given); its space file."""
    folder.mkdir(parents=True, exist_ok=True)
    target, prefix = folder, ""
    if package:
        target, prefix = folder / package, f"{package}."
        target.mkdir(exist_ok=True)
        (target / "__init__.py").write_text("")
    values = {"name": name, "sleep_s": sleep_s, "max_epochs": max_epochs, "module_prefix": prefix}
    for file, text in (("space.py", SPACE), ("family.py", FAMILY), ("data.py", DATA)):
        (target / file).write_text(text.format(**values).lstrip())
    return target / "space.py"


def write_distribution(site: Path, distribution: str, spaces: dict[str, str]) -> None:
    """An installed distribution's metadata in ``site`` (a folder on the import path) that registers ``spaces``
    (name -> ``module:ATTR``) in the entry-point group ``tuner.spaces``, as ``pip install`` would write it."""
    info = site / f"{distribution}-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in spaces.items())
    (info / "entry_points.txt").write_text(f"[tuner.spaces]\n{lines}")
