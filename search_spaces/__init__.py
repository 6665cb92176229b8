"""The report systems' search spaces: one module per space, named after it, each exposing ``SPEC``.

They are registered like any installed package's spaces, by entry point (``pyproject.toml``, group
``tuner.spaces``), and found through ``tuner.spaces``. A new report space is one module here and one line there.
"""
