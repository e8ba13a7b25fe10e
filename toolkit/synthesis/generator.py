"""The generator G(s; theta_G): a learned distribution over architecture decisions + inherited weights.

theta_G is one categorical distribution per decision of the :class:`DecisionSpace` (independent
factors). ``sample(seed)`` draws one option per decision with a NumPy generator seeded by ``seed``,
so the same theta and seed always give the same network. ``distinct(seeds)`` gives one network per seed, none
another's: a seed whose first draw is an earlier seed's network draws again from its own stream (a generator that
has committed draws its most likely network often). The weights a generated network starts from are
the run's trained supernet's, selected channel by channel with the inquisitor's importance ranking (see
:mod:`toolkit.synthesis.inherit` and :mod:`toolkit.synthesis.generate`).
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.arch.spec import ArchSpec
from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.space import DecisionSpace

PROB_FLOOR = 0.02  # every option keeps at least this probability, so the generator never stops exploring
MAX_DRAWS = 1000  # draws of one seed's stream looking for a network no earlier seed drew


@dataclass(frozen=True)
class Sample:
    seed: int
    choices: dict
    spec: ArchSpec


class Generator:
    """Categorical distributions over ``space.decisions``; see the module docstring."""

    def __init__(self, space: DecisionSpace, probs: dict[str, np.ndarray] | None = None, cycle: int = 0):
        self.space = space
        self.probs = {d.name: np.full(len(d.options), 1.0 / len(d.options)) for d in space.decisions}
        if probs:
            for name, p in probs.items():
                self.probs[name] = _normalize(np.asarray(p, dtype=float))
        self.cycle = cycle

    def sample(self, seed: int) -> Sample:
        return next(self.draws(seed))

    def draws(self, seed: int) -> Iterator[Sample]:
        """Successive networks from one random stream seeded by ``seed``; the first is ``sample(seed)``."""
        rng = np.random.default_rng(seed)
        while True:
            choices = {}
            for d in self.space.decisions:
                choices[d.name] = d.options[int(rng.choice(len(d.options), p=self.probs[d.name]))]
            yield Sample(seed, choices, self.space.apply(choices, name=f"{self.space.prototype.name}_s{seed}"))

    def distinct(self, seeds, max_draws: int = MAX_DRAWS) -> tuple[list[Sample], list[tuple[int, int]]]:
        """One network per seed, none an earlier seed's: a seed whose first draw repeats the architecture of an
        earlier seed of ``seeds`` draws again from its own stream, up to ``max_draws`` times. Returns the samples
        (in seed order) and (seed, draw number) for the seeds that needed more than one draw; a seed with no new
        network within ``max_draws`` keeps its first draw (its caller reports it as a repeat)."""
        seen, samples, redrawn = set(), [], []
        for seed in seeds:
            new = ((n, s) for n, s in enumerate(itertools.islice(self.draws(seed), max_draws), 1)
                   if s.spec.spec_hash() not in seen)
            n, chosen = next(new, (1, self.sample(seed)))
            redrawn += [(seed, n)] if n > 1 else []
            seen.add(chosen.spec.spec_hash())
            samples.append(chosen)
        return samples, redrawn

    def most_likely(self) -> dict:
        return {d.name: d.options[int(np.argmax(self.probs[d.name]))] for d in self.space.decisions}

    def entropy(self) -> float:
        """Mean entropy (nats) of the decision distributions: falls as the generator commits."""
        ent = [-(p * np.log(p)).sum() for p in self.probs.values()]
        return float(np.mean(ent)) if ent else 0.0

    def to_dict(self) -> dict:
        return {"format": "ferminet-generator/1", "cycle": self.cycle, "prototype": self.space.prototype.to_dict(),
                "decisions": [{"name": d.name, "kind": d.kind, "target": d.target, "options": list(d.options),
                               "probs": [float(x) for x in self.probs[d.name]]} for d in self.space.decisions],
                "width_options": list(next((d.options for d in self.space.decisions if d.kind == "width"), ()))}

    def save(self, path: str | Path) -> None:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(path)  # atomic: a kill never leaves a half-written generator

    @classmethod
    def load(cls, path: str | Path) -> "Generator":
        p = Path(path)
        if not p.is_file():
            raise ToolkitError(f"No generator at {str(p)!r}; pass a synthesis run folder that finished a cycle")
        d = json.loads(p.read_text())
        if d.get("format") != "ferminet-generator/1":
            raise InvalidArgumentError(f"{str(p)!r} is not a ferminet generator file")
        prototype = ArchSpec.from_dict(d["prototype"])
        side = prototype.resolution or prototype.input_shape[0]
        sides = next((x["options"] for x in d["decisions"] if x["kind"] == "resolution"), [side])
        separable = any(x["kind"] == "separable" for x in d["decisions"])
        space = DecisionSpace.from_prototype(prototype, tuple(d["width_options"]), tuple(o / side for o in sides),
                                             separable)
        return cls(space, {x["name"]: x["probs"] for x in d["decisions"]}, cycle=int(d["cycle"]))


def _normalize(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, 0) + 1e-12
    p = p / p.sum()
    p = np.maximum(p, PROB_FLOOR)
    return p / p.sum()
