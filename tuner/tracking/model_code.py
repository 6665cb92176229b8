"""The file MLflow loads the chosen model from ("models from code", instead of a pickled Python object)."""

from mlflow.models import set_model

from tuner.tracking.model import FamilyModel

set_model(FamilyModel())
