"""A run that reuses another run's supernet (``supernet_path``, ``--supernet-from``) must search the space that
supernet was trained over: with and without ``--separable`` the supernet's layers differ, so a mismatch is refused
with the fix, before any training. The shared tiny run's supernet (tests/toolkit/conftest.py) was trained without."""
import pytest

from toolkit.errors import InvalidArgumentError
from toolkit.synthesis import SynthesisConfig, run_synthesis


def test_a_supernet_trained_without_separable_blocks_is_refused_for_a_separable_run(tmp_path, tiny_synthesis,
                                                                                     reuse_tiny):
    _, shared = tiny_synthesis
    config = SynthesisConfig(**{**shared.to_dict(), "requirements": shared.requirements,
                                "width_options": shared.width_options, "resolution_options": shared.resolution_options,
                                "separable": True, **reuse_tiny})
    with pytest.raises(InvalidArgumentError, match="trained without separable blocks.*give --separable as that run"):
        run_synthesis(config, tmp_path / "run", tmp_path / "s.db", progress=False)
    assert not (tmp_path / "run" / "supernet").exists()  # nothing was trained for it


def test_a_supernet_over_the_prototype_is_refused_for_a_space_root_run(tmp_path, tiny_synthesis, reuse_tiny):
    _, shared = tiny_synthesis
    config = SynthesisConfig(**{**shared.to_dict(), "requirements": shared.requirements,
                                "width_options": shared.width_options, "resolution_options": shared.resolution_options,
                                "space_root": "dsnet", **reuse_tiny})
    with pytest.raises(InvalidArgumentError, match=r"another architecture than this run's space root \(dsnet\); "
                                                   r"give the same --space-root"):
        run_synthesis(config, tmp_path / "run", tmp_path / "s.db", progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was trained or written
