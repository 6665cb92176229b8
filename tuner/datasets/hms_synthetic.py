"""A small synthetic HMS competition folder, written in exactly the Kaggle layout (see DATA_FORMATS.md).

Each recording belongs to a patient and carries one of the six patterns (sometimes two: the "edge cases"
where annotators split), over a background of 1/f noise and a posterior alpha rhythm:

- Seizure: evolving ~3 Hz rhythmic spike-and-wave, high amplitude, with harmonics;
- LPD / GPD: periodic sharp discharges at ~1 Hz, on one hemisphere / on both;
- LRDA / GRDA: rhythmic delta at 1-2.5 Hz, on one hemisphere / on both;
- Other: background only, with more fast (beta) activity.

Patterns reach the electrodes through per-recording random gains, so the bipolar montage keeps them. The signal
is simulated at 50 Hz (everything above 20 Hz is irrelevant to both spectrograms), the Kaggle-style spectrogram
(2 s steps, 0.59-19.92 Hz) is computed from it over the 10-minute windows, and the stored EEG (only the part
around the label windows, like the real files) is resampled to 200 Hz with a little broadband noise. Votes come
from 3-16 simulated annotators who mostly, but not always, agree; a few NaN runs are left in both file kinds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tuner.datasets.hms_signal import (
    EEG_COLUMNS,
    EEG_RATE,
    MONTAGE,
    SPEC_COLUMNS,
    SPEC_STEP_S,
    chain_power_spectrogram,
)

CLASSES = ("Seizure", "LPD", "GPD", "LRDA", "GRDA", "Other")
VOTE_COLUMNS = ("seizure_vote", "lpd_vote", "gpd_vote", "lrda_vote", "grda_vote", "other_vote")
TRAIN_COLUMNS = (
    "eeg_id",
    "eeg_sub_id",
    "eeg_label_offset_seconds",
    "spectrogram_id",
    "spectrogram_sub_id",
    "spectrogram_label_offset_seconds",
    "label_id",
    "patient_id",
    "expert_consensus",
) + VOTE_COLUMNS
CLASS_WEIGHTS = (0.17, 0.15, 0.16, 0.12, 0.14, 0.26)
CONFUSED_WITH = {0: (1, 2), 1: (2, 0), 2: (1, 0), 3: (4, 1), 4: (3, 5), 5: (4, 3)}
"""The classes annotators mix up for each class (periodic vs rhythmic, lateralised vs generalised)."""

SIM_RATE = 50
PARQUET = {"use_dictionary": False, "compression": "zstd"}
"""Noise-like floats: dictionary encoding only inflates them."""
LEFT = {e for chain in ("LL", "LP") for e in MONTAGE[chain]} - {"Fz", "Cz", "Pz"}
RIGHT = {e for chain in ("RL", "RP") for e in MONTAGE[chain]}
POSTERIOR = {"O1", "O2", "P3", "P4", "T5", "T6", "Pz"}
SYNTHETIC_SEED = 2024
GENERATOR_VERSION = 1
"""Part of the cached folder's name: a changed generator never reuses an old folder."""
SPEC_SCALE = 50.0
"""Brings the simulated power to the range of the real files (log power mostly 0-8, peaks beyond e^10 rare)."""


def _pink_noise(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    spectrum = rng.normal(size=n // 2 + 1) + 1j * rng.normal(size=n // 2 + 1)
    freqs = np.fft.rfftfreq(n, 1 / SIM_RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 1.0))
    x = np.fft.irfft(spectrum, n)
    return amplitude * x / x.std()


def _pattern(rng: np.random.Generator, cls: int, t: np.ndarray) -> np.ndarray:
    """The class's source waveform (before spatial gains), in microvolts."""
    n = len(t)
    slow = 1 + 0.25 * np.sin(2 * np.pi * t / rng.uniform(20, 60) + rng.uniform(0, 6.3))
    if cls == 0:  # seizure: spike-and-wave whose frequency drifts from ~2.5 to ~3.5 Hz and back
        freq = 3.0 + 0.5 * np.sin(2 * np.pi * t / rng.uniform(60, 120))
        phase = 2 * np.pi * np.cumsum(freq) / SIM_RATE
        wave = np.sin(phase) + 0.6 * np.sin(2 * phase) + 0.4 * np.sin(3 * phase) + 0.25 * np.sin(4 * phase)
        return rng.uniform(100, 180) * slow * wave
    if cls in (1, 2):  # periodic discharges: sharp biphasic transients about once a second
        x = np.zeros(n)
        period = rng.uniform(0.7, 1.4)
        onsets = np.arange(rng.uniform(0, period), t[-1], period)
        times = onsets + rng.normal(0, 0.05, size=len(onsets))
        kernel_t = np.arange(-0.3, 0.3, 1 / SIM_RATE)
        width = rng.uniform(0.025, 0.045)
        kernel = -kernel_t / width * np.exp(-(kernel_t**2) / (2 * width**2))
        idx = np.clip((times * SIM_RATE).astype(int), 0, n - 1)
        x[idx] = 1.0
        return rng.uniform(150, 250) * np.convolve(x, kernel, mode="same")
    if cls in (3, 4):  # rhythmic delta
        freq = rng.uniform(1.0, 2.0) if cls == 3 else rng.uniform(1.5, 2.5)
        return rng.uniform(150, 220) * slow * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.3))
    # other: extra beta activity
    return rng.uniform(6, 12) * slow * np.sin(2 * np.pi * rng.uniform(14, 19) * t + rng.uniform(0, 6.3))


def _gains(rng: np.random.Generator, cls: int) -> dict[str, float]:
    """Per-electrode gains of a pattern: lateralised classes favour one hemisphere."""
    gains = {e: rng.uniform(0.2, 1.6) for e in EEG_COLUMNS}
    if cls in (1, 3):
        strong, weak = (LEFT, RIGHT) if rng.random() < 0.5 else (RIGHT, LEFT)
        for e in weak:
            gains[e] *= 0.12
        for e in ("Fz", "Cz", "Pz"):
            gains[e] *= 0.5
        for e in strong:
            gains[e] *= 1.3
    gains["EKG"] = 0.0
    return gains


def _simulate(rng: np.random.Generator, classes: tuple[int, ...], mix: tuple[float, ...], seconds: int):
    """Electrode name -> simulated signal at ``SIM_RATE``."""
    n = seconds * SIM_RATE
    t = np.arange(n) / SIM_RATE
    common = _pink_noise(rng, n, 6.0)
    alpha = rng.uniform(6, 14) * np.sin(2 * np.pi * rng.uniform(8.5, 11.5) * t)
    signals = {e: _pink_noise(rng, n, 8.0) + common for e in EEG_COLUMNS}
    for e in POSTERIOR:
        signals[e] = signals[e] + alpha * rng.uniform(0.6, 1.2)
    for cls, weight in zip(classes, mix, strict=True):
        source, gains = _pattern(rng, cls, t), _gains(rng, cls)
        for e in EEG_COLUMNS:
            signals[e] = signals[e] + weight * gains[e] * source
    heart = np.zeros(n)
    heart[:: int(SIM_RATE * rng.uniform(0.7, 1.0))] = 400.0
    signals["EKG"] = _pink_noise(rng, n, 10.0) + np.convolve(heart, np.hanning(5), mode="same")
    return signals


def _votes(rng: np.random.Generator, classes: tuple[int, ...], mix: tuple[float, ...]) -> np.ndarray:
    p = np.full(6, 0.1 / 6)
    for cls, weight in zip(classes, mix, strict=True):
        share = 0.9 * weight / sum(mix)
        p[cls] += share * 0.8
        for other in CONFUSED_WITH[cls]:
            p[other] += share * 0.1
    return rng.multinomial(int(rng.integers(3, 17)), p / p.sum())


def generate_competition(
    folder: Path,
    n_patients: int = 80,
    recordings_per_patient: tuple[int, int] = (2, 3),
    windows_per_recording: tuple[int, int] = (2, 3),
    seed: int = SYNTHETIC_SEED,
) -> pd.DataFrame:
    """Write ``train.csv``, ``train_spectrograms/`` and ``train_eegs/`` under ``folder``; returns train.csv."""
    rng = np.random.default_rng(seed)
    (folder / "train_spectrograms").mkdir(parents=True, exist_ok=True)
    (folder / "train_eegs").mkdir(parents=True, exist_ok=True)
    rows = []
    label_id = 1_000_000
    for p in range(n_patients):
        patient_id = 10_000 + 37 * p
        for _ in range(int(rng.integers(recordings_per_patient[0], recordings_per_patient[1] + 1))):
            main = int(rng.choice(6, p=CLASS_WEIGHTS))
            if rng.random() < 0.25:  # an edge case: a second pattern, annotators split
                classes, mix = (main, int(rng.choice([c for c in range(6) if c != main]))), (1.0, 0.6)
            else:
                classes, mix = (main,), (1.0,)
            n_windows = int(rng.integers(windows_per_recording[0], windows_per_recording[1] + 1))
            step = int(rng.choice([2, 4, 6]))
            eeg_offsets = [step * k for k in range(n_windows)]
            # The EEG starts 275 s (+ an even shift) into the spectrogram recording, so that every 50 s label
            # window sits in the middle of its 10-minute spectrogram window at an even offset.
            eeg_start = 275 + 2 * int(rng.integers(0, 10))
            spec_offsets = [eeg_start + off + 25 - 300 for off in eeg_offsets]
            spec_seconds = spec_offsets[-1] + 600 + 2 * int(rng.integers(0, 5))
            signals = _simulate(rng, classes, mix, spec_seconds)
            spectrogram_id = int(rng.integers(10**6, 10**9))
            eeg_id = int(rng.integers(10**8, 4 * 10**9))
            _write_spectrogram(folder, spectrogram_id, signals, spec_seconds, rng)
            eeg_seconds = eeg_offsets[-1] + 50 + int(rng.integers(0, 4))
            _write_eeg(folder, eeg_id, signals, eeg_start, eeg_seconds, rng)
            for k in range(n_windows):
                votes = _votes(rng, classes, mix)
                rows.append(
                    (
                        eeg_id,
                        k,
                        float(eeg_offsets[k]),
                        spectrogram_id,
                        k,
                        float(spec_offsets[k]),
                        label_id,
                        patient_id,
                        CLASSES[int(np.argmax(votes))],
                        *votes.tolist(),
                    )
                )
                label_id += int(rng.integers(1, 999))
    train = pd.DataFrame(rows, columns=list(TRAIN_COLUMNS))
    train.to_csv(folder / "train.csv", index=False)
    return train


def _write_spectrogram(folder: Path, spectrogram_id: int, signals, seconds: int, rng: np.random.Generator) -> None:
    rows = seconds // SPEC_STEP_S
    power = SPEC_SCALE * chain_power_spectrogram(signals, SIM_RATE, rows)
    if rng.random() < 0.15:  # a gap in the recording
        start = int(rng.integers(0, rows - 10))
        power[start : start + int(rng.integers(2, 10))] = np.nan
    columns = {"time": pa.array(np.arange(rows, dtype=np.float64) * SPEC_STEP_S + 1)}
    columns.update({name: pa.array(power[:, i]) for i, name in enumerate(SPEC_COLUMNS)})
    pq.write_table(pa.table(columns), folder / "train_spectrograms" / f"{spectrogram_id}.parquet", **PARQUET)


def _write_eeg(folder: Path, eeg_id: int, signals, start_s: int, seconds: int, rng: np.random.Generator) -> None:
    from scipy.signal import resample_poly

    lo, hi = start_s * SIM_RATE, (start_s + seconds) * SIM_RATE
    up = EEG_RATE // SIM_RATE
    data = {}
    for e in EEG_COLUMNS:
        x = resample_poly(signals[e][lo:hi], up, 1) + rng.normal(0, 2.0, size=(hi - lo) * up)
        data[e] = x.astype(np.float32)
    if rng.random() < 0.15:  # an electrode that came loose for a moment
        e = EEG_COLUMNS[int(rng.integers(0, 19))]
        start = int(rng.integers(0, len(data[e]) - 600))
        data[e][start : start + int(rng.integers(100, 600))] = np.nan
    pq.write_table(pa.table(data), folder / "train_eegs" / f"{eeg_id}.parquet", **PARQUET)
