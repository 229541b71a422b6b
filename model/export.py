"""Publishing a trained model: the ``.keras`` file under ``$MAMMO_HOME/models/<run_id>/`` and
a TensorFlow SavedModel whose ``serving_default`` signature maps a preprocessed image
batch to per-task probabilities — what a serving stack (TF Serving, a PACS plugin) needs
without this code base.

Serving input: ``image`` float32 ``[batch, H, W, 1]`` in [0, 1], breast facing left, width
padded on the right — exactly the cache format (``model.data.load_image``).
Serving outputs: one softmax vector per task, classes in ``curation.tasks`` order, listed
in ``serving_meta.json`` next to the SavedModel.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from curation.home import MammoHome
from curation.tasks import TASKS
from model.predict import load, model_tasks

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def model_dir(run_id: str, home: MammoHome | None = None) -> Path:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run_id={run_id!r} must be 1-128 characters of letters, digits, '_', '.', '-'")
    return (home or MammoHome.from_env()).models / run_id


def publish_keras(model_path: str | Path, run_id: str, home: MammoHome | None = None, *,
                  verify: bool = True) -> Path:
    """Copy a trained ``.keras`` file to ``$MAMMO_HOME/models/<run_id>/model.keras``."""
    src = Path(model_path)
    if verify:
        load(src)  # refuse to publish a file that does not load
    dest = model_dir(run_id, home) / "model.keras"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.resolve() != dest.resolve():
        shutil.copyfile(src, dest)
    return dest


def export_saved_model(model_path: str | Path | keras.Model, out_dir: str | Path) -> Path:
    """Write a SavedModel with a ``serving_default`` signature (image -> probabilities)."""
    m = model_path if isinstance(model_path, keras.Model) else load(model_path)
    tasks = model_tasks(m)
    if not tasks:
        raise ValueError("the model has no classification head to serve")
    _, height, width, _ = m.input_shape
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)

    def serve(image):
        out = m(image, training=False)
        return {t: tf.cast(out[t], tf.float32) for t in tasks}

    archive = keras.export.ExportArchive()
    archive.track(m)
    archive.add_endpoint(name="serve", fn=serve,
                         input_signature=[tf.TensorSpec([None, height, width, 1], tf.float32, name="image")])
    archive.write_out(str(out_dir), verbose=False)
    meta = {"input": {"name": "image", "dtype": "float32", "shape": [None, height, width, 1],
                      "range": [0.0, 1.0], "orientation": "breast facing left, width padded on the right"},
            "outputs": {t: [str(c) for c in TASKS[t]] for t in tasks}}
    (out_dir / "serving_meta.json").write_text(json.dumps(meta, indent=2))
    return out_dir


def publish(model_path: str | Path, run_id: str, home: MammoHome | None = None) -> dict[str, Path]:
    """Both artefacts under ``$MAMMO_HOME/models/<run_id>/``."""
    m = load(model_path)  # loads once: proves the file is valid and feeds the export
    keras_path = publish_keras(model_path, run_id, home, verify=False)
    saved = export_saved_model(m, keras_path.parent / "saved_model")
    return {"keras": keras_path, "saved_model": saved}
