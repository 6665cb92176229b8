"""Code the tests share: test-only model family and space, the CLI in a fresh process, MLflow and cluster look-ups.

Test modules import from here, never from each other or from ``conftest`` (which holds only fixtures).
"""
