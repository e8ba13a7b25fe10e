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
