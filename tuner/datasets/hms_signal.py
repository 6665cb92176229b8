"""EEG montage and spectrograms of the HMS competition (report 003).

``eeg_spectrogram`` is the public "magic formula" that turns a 50 s, 200 Hz EEG window into four 128x256
mel-spectrogram images, one per bipolar chain, computed with librosa exactly as published (see
DATA_FORMATS.md). ``chain_power_spectrogram`` is the Kaggle-style 2 s spectrogram the synthetic generator
writes into ``train_spectrograms/`` (100 bins from 0.59 to 19.92 Hz per chain).
"""

from __future__ import annotations

import numpy as np

EEG_COLUMNS = (
    "Fp1", "F3", "C3", "P3", "F7", "T3", "T5", "O1", "Fz", "Cz", "Pz",
    "Fp2", "F4", "C4", "P4", "F8", "T4", "T6", "O2", "EKG",
)  # fmt: skip
EEG_RATE = 200
EEG_WINDOW = 10_000
"""Samples of one label window: 50 s at 200 Hz."""

CHAINS = ("LL", "RL", "LP", "RP")
"""Chain order of the Kaggle spectrogram files (and of every image built from them)."""
MONTAGE = {
    "LL": ("Fp1", "F7", "T3", "T5", "O1"),
    "RL": ("Fp2", "F8", "T4", "T6", "O2"),
    "LP": ("Fp1", "F3", "C3", "P3", "O1"),
    "RP": ("Fp2", "F4", "C4", "P4", "O2"),
}
"""Each chain's electrodes front to back; its four bipolar signals are neighbour differences."""

SPEC_BINS = 100
SPEC_FREQUENCIES = tuple(np.round(0.59 + 0.1953125 * np.arange(SPEC_BINS), 2))
"""Kaggle spectrogram bin centres: 0.59 ... 19.92 Hz, ~0.195 Hz apart."""
SPEC_STEP_S = 2
SPEC_WINDOW_ROWS = 300
"""Rows of one label window of a Kaggle spectrogram: 10 minutes in 2 s steps."""

MEL_BINS = 128
MEL_WIDTH = 256


def spectrogram_column(chain: str, frequency: float) -> str:
    """``LL_0.59``, ``LL_4.1``, ``LL_5``: the Kaggle names drop trailing zeros."""
    return f"{chain}_{f'{frequency:.2f}'.rstrip('0').rstrip('.')}"


SPEC_COLUMNS = tuple(spectrogram_column(chain, f) for chain in CHAINS for f in SPEC_FREQUENCIES)


def bipolar_pairs(chain: str) -> list[tuple[str, str]]:
    electrodes = MONTAGE[chain]
    return list(zip(electrodes[:-1], electrodes[1:], strict=True))


def _fill_nan(x: np.ndarray) -> np.ndarray:
    """NaN -> the signal's mean; an all-NaN signal becomes zeros (as the published formula does)."""
    missing = np.isnan(x)
    if not missing.any():
        return x
    if missing.all():
        return np.zeros_like(x)
    return np.where(missing, np.nanmean(x), x)


MEL_SETTINGS = {"sr": EEG_RATE, "n_fft": 1024, "n_mels": MEL_BINS, "fmin": 0, "fmax": 20}
WIN_LENGTH = 128


def mel_db(signals: np.ndarray) -> np.ndarray:
    """Bipolar signals (..., n) -> their (..., 128, 256) mel images scaled as (dB + 40) / 40: the magic formula.

    Identical to ``librosa.feature.melspectrogram(y=x, sr=200, hop_length=len(x)//256, n_fft=1024, n_mels=128,
    fmin=0, fmax=20, win_length=128)`` then ``power_to_db(ref=np.max)`` per signal, but batched: librosa's
    STFT and mel filter bank, with one matrix product over the FFT bins below fmax instead of librosa's per-call einsum.
    """
    import librosa

    hop = signals.shape[-1] // MEL_WIDTH
    stft = librosa.stft(signals.astype(np.float32), n_fft=MEL_SETTINGS["n_fft"], hop_length=hop, win_length=WIN_LENGTH)
    bank = librosa.filters.mel(**MEL_SETTINGS)
    used = int(np.flatnonzero(bank.any(axis=0))[-1]) + 1  # fmax=20 Hz: FFT bins above it have zero weight
    mel = bank[:, :used] @ (np.abs(stft[..., :used, :]) ** 2)
    out = np.empty(mel.shape[:-1] + (MEL_WIDTH,), dtype=np.float32)
    for index in np.ndindex(mel.shape[:-2]):
        out[index] = librosa.power_to_db(mel[index], ref=np.max)[:, :MEL_WIDTH]
    return (out + 40) / 40


def eeg_spectrogram(window: dict[str, np.ndarray]) -> np.ndarray:
    """``window``: electrode name -> samples (the middle ``EEG_WINDOW`` are used). Returns (4, 128, 256) in
    ``CHAINS`` order, each chain the mean of its four neighbour-difference images."""
    length = len(next(iter(window.values())))
    start = (length - EEG_WINDOW) // 2
    diffs = np.stack(
        [
            _fill_nan(window[a][start : start + EEG_WINDOW].astype(np.float64) - window[b][start : start + EEG_WINDOW])
            for chain in CHAINS
            for a, b in bipolar_pairs(chain)
        ]
    )
    images = mel_db(diffs).reshape(len(CHAINS), 4, MEL_BINS, MEL_WIDTH)
    return images.mean(axis=1)


def chain_power_spectrogram(signals: dict[str, np.ndarray], rate: int, rows: int) -> np.ndarray:
    """Kaggle-style spectrogram: power of each chain's bipolar signals in ``SPEC_FREQUENCIES`` bins, one row
    per 2 s step centred at 1, 3, 5 ... s, averaged over the chain's four differences.

    Returns (rows, 4 * 100) in ``SPEC_COLUMNS`` order. ``rate`` must make 0.1953 Hz an FFT bin spacing
    (rate / n_fft), so the Kaggle bins are exact FFT bins: rate 50 with n_fft 256.
    """
    n_fft = int(round(rate / 0.1953125))
    first_bin = 3  # 3 * 0.1953 = 0.59 Hz
    centres = (np.arange(rows) * SPEC_STEP_S + 1) * rate
    window = np.hanning(n_fft).astype(np.float32)
    out = np.zeros((rows, len(CHAINS) * SPEC_BINS), dtype=np.float32)
    for k, chain in enumerate(CHAINS):
        power = np.zeros((rows, SPEC_BINS), dtype=np.float64)
        for a, b in bipolar_pairs(chain):
            diff = np.nan_to_num(signals[a] - signals[b])
            padded = np.pad(diff, (n_fft // 2, n_fft // 2))
            frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[centres]
            spectrum = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2 / (rate * n_fft)
            power += spectrum[:, first_bin : first_bin + SPEC_BINS]
        out[:, k * SPEC_BINS : (k + 1) * SPEC_BINS] = power / 4.0
    return out
