"""A stand-in for the TensorFlow model, for tests of the experiment and asset plumbing.

``FakeExecutor`` trains nothing: its "model" is a JSON file, and its malignancy score is the truth
plus noise that shrinks with the number of tasks trained (so multi-task beats mono-task here by
construction — the tests check the plumbing, never the science). ``python -m
tests.fake_training_job <request.json>`` is ``model.training_job`` with this executor: the real
Pipes protocol in a real subprocess, without the minute TensorFlow takes to start.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


class FakeExecutor:
    def __init__(self, *_, **__):
        self.trained: list[str] = []

    def train(self, job, rows, out_dir: Path, init_model):
        self.trained.append(job.key)
        path = Path(out_dir) / "model.keras"
        path.write_text(json.dumps({"tasks": job.train_config["tasks"], "key": job.key,
                                    "init": str(init_model) if init_model else None}))
        return path

    def predict(self, model_paths, rows, mc_passes, latent):
        info = json.loads(Path(model_paths[0]).read_text())
        rng = np.random.default_rng(int(hashlib.sha256(info["key"].encode()).hexdigest()[:8], 16))
        noise = 1.5 / len(info["tasks"])
        y = pd.to_numeric(rows["breastbin"], errors="coerce").fillna(0).to_numpy()
        out = pd.DataFrame({"image_key": rows["image_key"].to_numpy(), "breast_key": rows["breast_key"].to_numpy()})
        out["p_breastbin"] = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, noise, len(rows)))))
        out["p_view_MLO"] = (rows["view"] == "MLO").astype(float).to_numpy() * 0.6 + 0.2
        for k in range(1, 7):
            out[f"p_acr_{k}"] = rng.random(len(rows))
        for d in "ABCD":
            out[f"p_density_{d}"] = rng.random(len(rows))
        if latent:
            for k in range(4):
                out[f"z_{k}"] = rng.normal(size=len(rows)) + y
        return out


class FailingExecutor(FakeExecutor):
    """Fails every training of ``fail_role`` (e.g. "mtl"), trains the rest like :class:`FakeExecutor`."""

    def __init__(self, fail_role: str):
        super().__init__()
        self.fail_role = fail_role

    def train(self, job, rows, out_dir: Path, init_model):
        if job.role == self.fail_role:
            raise RuntimeError(f"no {self.fail_role} today")
        return super().train(job, rows, out_dir, init_model)


if __name__ == "__main__":
    from model import training_job

    training_job.ModelExecutor = FakeExecutor
    raise SystemExit(training_job.main(sys.argv[1:]))
