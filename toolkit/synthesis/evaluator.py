"""Where a candidate's weights come from: the search evaluators.

- :class:`SupernetEvaluator` (gensynth, random, width): the sub-network's weights are extracted from the trained
  weight-sharing supernet (:mod:`toolkit.synthesis.supernet`), batch-norm statistics re-estimated on a fixed set
  of training images. No per-candidate training.
- :class:`PrunedPrototypeEvaluator` (l1prune, Li et al. 2017): the prototype's filters ranked by kernel L1 norm,
  the top ones kept, batch-norm statistics re-estimated the same way.

Both hand out two things: ``proxy(choices)`` — the network as the search evaluates it — and ``start(choices)`` —
the weights final training starts from (the same extraction, before re-estimation).
"""
from __future__ import annotations

import numpy as np

from toolkit.synthesis.space import DecisionSpace
from toolkit.synthesis.supernet import Supernet, recalibrate_bn


class _Evaluator:
    kind = ""
    space: DecisionSpace
    recal_x: np.ndarray

    def start(self, choices: dict, name: str | None = None):
        raise NotImplementedError

    def proxy(self, choices: dict, name: str | None = None):
        """(Keras model, ArchSpec) of ``choices`` as the search evaluates it."""
        model, spec = self.start(choices, name)
        recalibrate_bn(model, self.recal_x)
        return model, spec


class SupernetEvaluator(_Evaluator):
    kind = "supernet"

    def __init__(self, supernet: Supernet, recal_x: np.ndarray):
        self.supernet = supernet
        self.space = supernet.space
        self.recal_x = recal_x

    def start(self, choices: dict, name: str | None = None):
        return self.supernet.extract(choices, name=name)


class PrunedPrototypeEvaluator(_Evaluator):
    kind = "l1prune"

    def __init__(self, prototype_model, space: DecisionSpace, importance: dict[str, np.ndarray], recal_x: np.ndarray):
        self.prototype_model = prototype_model
        self.space = space
        self.importance = importance
        self.recal_x = recal_x

    def start(self, choices: dict, name: str | None = None):
        from toolkit.arch import build_model
        from toolkit.synthesis.inherit import inherit_weights

        spec = self.space.apply(choices, name=name)
        model = build_model(spec, seed=0)
        inherit_weights(self.prototype_model, model, self.space, spec, self.importance)
        return model, spec
