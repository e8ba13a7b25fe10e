"""A tiny synthesis run shared by the synthesis tests that only need *a* trained prototype and supernet.

The farm loop, lost-phone and report tests each trained the same tiny resnet20 prototype and supernet on the same
images (600 Fashion-MNIST training images, data seed 0); training (mostly the supernet's tf.function tracing) was
most of their time, and none of them asserts anything about it. One host run now trains them once per session; the
other runs reuse them (``prototype_path`` / ``supernet_path``, which refuse a run trained on other images).
"""
from __future__ import annotations

import pytest

# The farm loop test's reference run: also the run whose prototype and supernet the others reuse.
TINY_HOST = dict(prototype="resnet20", prototype_width=0.25, n_train=600, prototype_epochs=1, supernet_epochs=1,
                 cycles=2, population=3, final_k=0, profile_runs=3, probe_samples=32, recal_samples=128,
                 retrain_reference=False, requirements=("accuracy_drop<=100pt",))


@pytest.fixture(scope="session")
def tiny_synthesis(tmp_path_factory):
    """(SynthesisResult, its config) of a finished tiny host run: search only (``final_k=0``), its
    ``prototype.keras`` and ``supernet/`` in ``result.out_dir``. Read it; never resume or extend it."""
    from toolkit.synthesis import SynthesisConfig, run_synthesis

    ws = tmp_path_factory.mktemp("tiny-synthesis")
    config = SynthesisConfig(target="host", **TINY_HOST)
    return run_synthesis(config, ws / "run", ws / "tiny.db", progress=False), config


@pytest.fixture
def reuse_tiny(tiny_synthesis):
    """Keyword arguments that make a SynthesisConfig start from the shared run's prototype and supernet."""
    result, _ = tiny_synthesis
    return dict(prototype_path=f"{result.out_dir}/prototype.keras", supernet_path=result.out_dir)
