"""Untuned standard models the spaces compare their chosen config with (``SpaceSpec.references``): scikit-learn's
defaults with a fixed seed, nothing searched, each trained in seconds on the non-test rows."""

from tuner.spec import Reference

CLASSIFIERS = (
    Reference("hist_gradient_boosting", "sklearn.ensemble.HistGradientBoostingClassifier", {"random_state": 0}),
    Reference("random_forest", "sklearn.ensemble.RandomForestClassifier", {"random_state": 0}),
    Reference("logistic_regression", "sklearn.linear_model.LogisticRegression", {"max_iter": 2000}, scaled=True),
)
"""Tabular and signal classifiers: boosted trees, a forest and a linear model (on standardized features)."""

REGRESSORS = (
    Reference("hist_gradient_boosting", "sklearn.ensemble.HistGradientBoostingRegressor", {"random_state": 0}),
    Reference("random_forest", "sklearn.ensemble.RandomForestRegressor", {"random_state": 0}),
    Reference("ridge", "sklearn.linear_model.Ridge", scaled=True),
)
"""The same three for a numeric target."""

SVC = Reference("svc", "sklearn.svm.SVC", scaled=True)
"""The classic reference of handwritten digits: an RBF support-vector machine on the pixels."""
