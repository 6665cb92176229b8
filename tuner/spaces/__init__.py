"""Finding a space: a registered name, a module path or a file path, resolved to its spec and where it came from.

A space reference is one of:

- a registered name (``steel_multiclass``): installed packages declare spaces under the entry-point group
  ``tuner.spaces`` (``name = "module:ATTR"``); tuner's own report spaces are registered the same way, in its
  ``pyproject.toml``, so there is one way to find them all;
- a module path: ``my_pkg.spaces.resnet`` (its ``SPEC``) or ``my_pkg.spaces:RESNET_SPEC``;
- a file path: ``./spaces/resnet.py`` (its ``SPEC``) or ``./spaces/resnet.py:RESNET_SPEC``. The file's folder comes
  first on the import path wherever the space's code runs (here, in every trial process, in the published model),
  so what the spec names by module (its ``trainable`` family, its ``dataset`` loader) is found beside it.

Every mistake in a reference is a one-line ``TunerError`` naming the bad value, raised before anything is written.

    source    what a resolved space is (``Space``: its spec and ``SpaceSource``)
    registry  the entry points of the group ``tuner.spaces``
    resolve   a reference to a ``Space``; the space of a study's commands (resume, status, ...)
    code      where a space's code is found and shipped (import path, Ray workers, the published model)
    record    what a run record keeps of its space, and whether the space changed since
"""

from tuner.spaces.registry import ENTRY_POINT_GROUP, names, registered
from tuner.spaces.resolve import get, load, load_recorded, space_name, study_space
from tuner.spaces.source import Space, SpaceSource

__all__ = ["ENTRY_POINT_GROUP", "Space", "SpaceSource", "get", "load", "load_recorded", "names", "registered",
           "space_name", "study_space"]  # fmt: skip
