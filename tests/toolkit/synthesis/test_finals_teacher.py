"""Under ``distill`` the finals learn from the reference they are judged against (``finals.final_teacher``)."""
import dataclasses

import numpy as np

from toolkit.arch import build_model, get_prototype
from toolkit.synthesis import SynthesisConfig
from toolkit.synthesis.assess import CandidateResult, Context
from toolkit.synthesis.finals import final_teacher
from toolkit.synthesis.requirements import parse_requirements


def _result(cid, keras_path=None):
    return CandidateResult(cid, -1, "gensynth", None, "h", "ok", None, int8_top1=0.9, keras_path=keras_path,
                           phase="reference" if cid == "reference" else "search")


def test_the_teacher_is_the_stronger_reference_else_the_prototype(tmp_path):
    config = SynthesisConfig(target="host", n_train=600, distill=True, requirements=("accuracy_drop<=1pt",))
    ctx = Context(config, tmp_path, parse_requirements(config.requirements), connect=False)
    spec = dataclasses.replace(get_prototype("resnet20"), name="resnet20_q")
    ctx.prototype_model = build_model(spec, seed=1)
    retrained = build_model(spec, seed=2)  # the reference: same architecture, other weights
    retrained.save(tmp_path / "reference.keras")

    ctx.final_reference = _result("prototype")  # the prototype as trained was the stronger on validation
    assert final_teacher(ctx) is ctx.prototype_model

    ctx.final_reference = _result("reference", str(tmp_path / "reference.keras"))
    teacher = final_teacher(ctx)
    assert teacher is not ctx.prototype_model
    for mine, theirs in zip(teacher.get_weights(), retrained.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    assert final_teacher(ctx) is teacher  # loaded once

    ctx.final_reference = _result("reference", None)  # no Keras file kept: the prototype, not a guess
    assert final_teacher(ctx) is ctx.prototype_model


def test_another_runs_reference_is_checked_before_it_is_used(tmp_path):
    """``reference_path``: refused without a trained reference or on other images; a resumed run takes its copy."""
    import pytest

    from toolkit.errors import InvalidArgumentError
    from toolkit.synthesis.finals import reused_reference
    from toolkit.synthesis.loop import _write_run_file

    theirs = SynthesisConfig(target="host", n_train=600)
    (tmp_path / "theirs").mkdir()
    _write_run_file(tmp_path / "theirs" / "run.json", "synthesis-x", theirs, "t.db")
    mine = dataclasses.replace(theirs, reference_path=str(tmp_path / "theirs"))
    assert reused_reference(dataclasses.replace(mine, final_k=0), tmp_path / "mine") is None  # no finals: unused
    with pytest.raises(InvalidArgumentError, match="holds no trained reference"):
        reused_reference(mine, tmp_path / "mine")
    (tmp_path / "theirs" / "finals").mkdir()
    (tmp_path / "theirs" / "finals" / "reference.keras").write_bytes(b"k")
    assert reused_reference(mine, tmp_path / "mine") == tmp_path / "theirs" / "finals" / "reference.keras"
    with pytest.raises(InvalidArgumentError, match="other images"):
        reused_reference(dataclasses.replace(mine, n_train=700), tmp_path / "mine")
    with pytest.raises(InvalidArgumentError, match="final_learning_rate=0.004 there, 0.001 here"):
        reused_reference(dataclasses.replace(mine, final_learning_rate=1e-3), tmp_path / "mine")
    (tmp_path / "mine" / "finals").mkdir(parents=True)
    (tmp_path / "mine" / "finals" / "reference.keras").write_bytes(b"k")  # resumed: its copy, not theirs
    assert reused_reference(mine, tmp_path / "mine") == tmp_path / "mine" / "finals" / "reference.keras"
    with pytest.raises(InvalidArgumentError, match="retrain_reference=False asks for none"):
        dataclasses.replace(mine, retrain_reference=False)


def test_finals_are_judged_against_the_stronger_on_validation_of_prototype_and_reference(tmp_path):
    """``set_final_reference``: the run's loop and the benchmark scripts that reread a run pick the same network."""
    from toolkit.synthesis.finals import set_final_reference

    config = SynthesisConfig(target="host", n_train=600, requirements=("accuracy_drop<=1pt",))
    ctx = Context(config, tmp_path, parse_requirements(config.requirements), connect=False)
    proto = dataclasses.replace(_result("prototype"), int8_top1=0.90)
    set_final_reference(ctx, proto, dataclasses.replace(_result("reference"), int8_top1=0.91))
    assert ctx.final_reference.candidate_id == "reference"
    set_final_reference(ctx, proto, dataclasses.replace(_result("reference"), int8_top1=0.89))
    assert ctx.final_reference is proto
    set_final_reference(ctx, proto, dataclasses.replace(_result("reference"), status="failed", int8_top1=None))
    assert ctx.final_reference is proto
    set_final_reference(ctx, proto, None)
    assert ctx.final_reference is proto
