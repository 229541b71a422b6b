"""The network, its training and inference.

``import model`` is all a ``.keras`` file of this project needs to load:

    import keras, model
    net = keras.models.load_model("model.keras")

The custom layers and losses are registered under the Keras package name ``mammo``
(``model.layers``, ``model.losses``). Importing Keras costs seconds and hundreds of MB, and
light consumers of this package (the Dagster code server, the CLI's ``--help``) import
``model.experiments`` without ever touching a network, so registration waits for Keras: it
happens now if Keras is already imported, otherwise right after Keras finishes importing.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

_KERAS = "keras"


def register_custom_objects() -> None:
    """Register the ``mammo>`` layers and losses with Keras (idempotent)."""
    import model.layers  # noqa: F401
    import model.losses  # noqa: F401


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level ``keras`` module so that, once Keras has finished
    importing, the custom objects are registered; removes itself after that."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _KERAS:
            return None
        sys.meta_path.remove(self)  # let the real finders locate keras
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            register_custom_objects()

        spec.loader.exec_module = exec_then_register
        return spec


if _KERAS in sys.modules:
    register_custom_objects()
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
