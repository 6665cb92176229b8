"""Training-set balancing as a hyperparameter (report 001): none, random oversampling or SMOTE.

Only the training split is ever resampled: validation and test rows keep the real class mix, so their figures
stay comparable across balancing choices. Both resamplers come from imbalanced-learn and bring every class up
to the majority's count ("auto" strategy), which is what the report's "oversampled" and "smote" files are.
"""

from __future__ import annotations

import numpy as np

BALANCING = ("none", "oversampled", "smote")
SMOTE_NEIGHBOURS = 5
"""imbalanced-learn's default; a class needs at least this many + 1 training rows for SMOTE."""


def balance(x: np.ndarray, y: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the training rows resampled by ``method`` (``none`` returns them unchanged).

    ``x`` may have any shape after the first axis (SMOTE interpolates the flattened rows, then they are reshaped
    back). The originals are kept and new rows are appended, so nothing of the real training data is lost.
    """
    if method not in BALANCING:
        raise ValueError(f"balancing {method!r} is not one of {', '.join(BALANCING)}")
    if method == "none":
        return x, y
    # imported here: listing or showing the ECG spaces (which name BALANCING) must not pay for imbalanced-learn
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    flat = x.reshape(len(x), -1)
    if method == "oversampled":
        sampler = RandomOverSampler(random_state=seed)
    else:
        counts = np.bincount(y)
        rare = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
        if counts[rare] <= SMOTE_NEIGHBOURS:
            raise ValueError(
                f"SMOTE needs more than {SMOTE_NEIGHBOURS} training rows of every class; class {rare} has "
                f"{counts[rare]} (use balancing 'oversampled' or 'none', or more data)"
            )
        sampler = SMOTE(k_neighbors=SMOTE_NEIGHBOURS, random_state=seed)
    x_res, y_res = sampler.fit_resample(flat, y)
    return np.ascontiguousarray(x_res, dtype=x.dtype).reshape(-1, *x.shape[1:]), np.asarray(y_res, dtype=y.dtype)
