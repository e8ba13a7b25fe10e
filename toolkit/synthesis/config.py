"""What defines a synthesis run: :class:`SynthesisConfig` (stored in the run's ``run.json``) and the strategies."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import InvalidArgumentError
from toolkit.synthesis.requirements import parse_requirements
from toolkit.synthesis.space import DEFAULT_RESOLUTIONS, DEFAULT_WIDTHS, check_fractions

STRATEGIES = ("gensynth", "random", "width", "l1prune")
ELITES = ("reward", "front")  # how the generator's update picks its elite (toolkit.synthesis.inquisitor.update)


@dataclass(frozen=True)
class SynthesisConfig:
    """Everything that defines a synthesis run (stored in ``run.json``)."""

    prototype: str = "resnet20"
    dataset: str = "fashion_mnist"
    data_path: str | None = None
    target: str = "host"
    device: str | None = None  # the phone (with several: the first of ``devices``)
    devices: tuple[str, ...] = ()  # several phones: a phone farm measures on all of them in parallel
    require_on: str | None = None  # with several device models: the one requirements are judged on (default: the
    # first phone's); the others are measured and stored too, with their provenance
    requirements: tuple[str, ...] = ("accuracy_drop<=1.0pt",)
    objective: str = "netscore"
    strategy: str = "gensynth"
    cycles: int = 5
    population: int = 8
    budget_s: float | None = None  # wall time of the search phase
    prototype_width: float = 1.0
    prototype_path: str | None = None  # a trained prototype (.keras) to start from instead of training one
    supernet_path: str | None = None  # a run folder whose trained supernet to reuse (same prototype and data)
    prototype_epochs: int = 3
    supernet_epochs: int = 2
    final_k: int = 3  # 0: search only (finalize later with `ferminet generate --finalize`)
    final_epochs: int | None = None  # default: the prototype's epochs (the same budget as the prototype)
    # final training also learns the soft predictions of the reference the finals are judged against (finals.py).
    # On by default: on 8 finals of 4 benchmark draws it raised validation top-1 in every one (notes in README).
    distill: bool = True
    retrain_reference: bool = True  # the prototype architecture gets the finals' extra training too
    # a finished run folder whose reference (its finals/reference.keras) this run's finals are judged against, and
    # under distill learn from, instead of training one here; the same data and reference recipe (checked)
    reference_path: str | None = None
    n_train: int | None = None
    n_val: int = 5_000
    n_eval: int | None = None  # validation images the search evaluates on (default: all of them)
    recal_samples: int = 1_024
    probe_samples: int = 512
    threads: int = 1
    profile_runs: int = 30
    seed: int = 0  # the generator's samples
    data_seed: int | None = None  # which images are train / validation (default: seed); runs sharing a
    # prototype or a supernet must share it, so no image trained on is validated on
    width_options: tuple[float, ...] = DEFAULT_WIDTHS
    # input resolutions the search may choose, as fractions of the input side ((1.0,): the input's own only)
    resolution_options: tuple[float, ...] = DEFAULT_RESOLUTIONS
    # the search may also make ResNet blocks depthwise-separable (toolkit.synthesis.space, ``separable:<block>``)
    separable: bool = False
    # the built-in architecture the search space is derived from (its supernet's root), when it is not the
    # prototype: e.g. "dsnet". The prototype stays the reference every requirement and ratio is judged against.
    space_root: str | None = None
    learning_rate: float = 2e-3
    supernet_learning_rate: float = 1e-3
    # The final recipe's peak learning rate (the reference gets the same recipe). Chosen on validation: a 13x
    # smaller resnet20 child, 3 epochs on 25k images from supernet weights, reached 84.0 / 87.4 / 88.6 % at
    # 5e-4 / 2e-3 / 4e-3 (notes in the issue 10 closing note).
    final_learning_rate: float = 4e-3
    # --predictor: screen search candidates by a latency/energy prediction, measuring only where it matters
    # (toolkit.synthesis.screen); predictor_path: a `ferminet predictor fit` file (None: fitted in the run)
    screen: bool = False
    predictor_path: str | None = None
    measure_share: float = 0.2  # share of the otherwise-predicted candidates measured anyway (seeded)
    refit_every: int = 4  # refit the screen's predictor after this many new measurements
    # gensynth's elite while fewer than 2 of a cycle meet the requirements: "reward" (least violation first) or
    # "front" (the cycle's Pareto layers over violation vs MACs first), see toolkit.synthesis.inquisitor.update
    elite: str = "reward"
    # --shortlist N: before the finals are chosen, up to N search candidates (picked by the finals' rule) are each
    # fine-tuned shortlist_epochs on shortlist_images training images and judged again; the finals are chosen among
    # them (toolkit.synthesis.shortlist). 0: the finals are chosen on the search's proxy.
    shortlist: int = 0
    shortlist_epochs: int = 1
    shortlist_images: int = 10_000

    def __post_init__(self) -> None:
        from toolkit.arch import PROTOTYPES
        from toolkit.synthesis.objective import OBJECTIVES

        if self.strategy not in STRATEGIES:
            raise InvalidArgumentError(f"Unknown strategy {self.strategy!r}. Use one of {', '.join(STRATEGIES)}")
        if self.prototype not in PROTOTYPES:
            raise InvalidArgumentError(f"Unknown prototype {self.prototype!r}. Use one of {', '.join(PROTOTYPES)}")
        if self.objective not in OBJECTIVES:
            raise InvalidArgumentError(f"Unknown objective {self.objective!r}. Use one of {', '.join(OBJECTIVES)}")
        for name in ("cycles", "population", "prototype_epochs", "threads", "profile_runs", "n_val",
                     "recal_samples", "probe_samples", "shortlist_epochs", "shortlist_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
        for name in ("final_epochs", "n_eval", "n_train"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidArgumentError(f"{name} must be an integer >= 1 or None. Received: {name}={value!r}")
        if isinstance(self.final_k, bool) or not isinstance(self.final_k, int) or self.final_k < 0:
            raise InvalidArgumentError(f"final_k must be an integer >= 0 (0: search only). Received: "
                                       f"final_k={self.final_k!r}")
        if isinstance(self.supernet_epochs, bool) or not isinstance(self.supernet_epochs, int) \
                or self.supernet_epochs < 0:
            raise InvalidArgumentError(f"supernet_epochs must be an integer >= 0. "
                                       f"Received: supernet_epochs={self.supernet_epochs!r}")
        for name in ("learning_rate", "supernet_learning_rate", "final_learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgumentError(f"{name} must be a number > 0. Received: {name}={value!r}")
        check_fractions("width_options", self.width_options)
        check_fractions("resolution_options", self.resolution_options)
        if self.budget_s is not None and not self.budget_s > 0:
            raise InvalidArgumentError(f"The budget must be > 0. Received: budget={self.budget_s!r}; e.g. --budget 60m")
        parse_requirements(self.requirements)
        if isinstance(self.measure_share, bool) or not isinstance(self.measure_share, (int, float)) \
                or not 0.0 <= self.measure_share <= 1.0:
            raise InvalidArgumentError(f"measure_share must be a number in [0, 1]. "
                                       f"Received: measure_share={self.measure_share!r}")
        if isinstance(self.refit_every, bool) or not isinstance(self.refit_every, int) or self.refit_every < 1:
            raise InvalidArgumentError(f"refit_every must be an integer >= 1. Received: refit_every={self.refit_every!r}")
        if not isinstance(self.separable, bool):
            raise InvalidArgumentError(f"separable must be True or False. Received: separable={self.separable!r}")
        if self.space_root is not None:
            if self.space_root not in PROTOTYPES:
                raise InvalidArgumentError(f"Unknown space root {self.space_root!r}. "
                                           f"Use one of {', '.join(PROTOTYPES)}")
            if self.strategy not in ("gensynth", "random"):
                raise InvalidArgumentError(f"--space-root is for the gensynth and random strategies: {self.strategy} "
                                           f"scales the prototype itself. Drop --space-root. "
                                           f"Received: strategy={self.strategy!r}, space_root={self.space_root!r}")
        if isinstance(self.shortlist, bool) or not isinstance(self.shortlist, int) or self.shortlist < 0:
            raise InvalidArgumentError(f"shortlist must be an integer >= 0 (0: no shortlist). "
                                       f"Received: shortlist={self.shortlist!r}")
        if self.shortlist and self.final_k == 0:
            raise InvalidArgumentError(f"The shortlist is what the finals are chosen among; with final_k=0 there are "
                                       f"none. Received: shortlist={self.shortlist}, final_k=0; drop --shortlist or "
                                       f"give --final-k")
        if self.shortlist and self.shortlist < self.final_k:
            raise InvalidArgumentError(f"The shortlist is what the finals are chosen among: it needs at least final_k "
                                       f"({self.final_k}) networks. Received: shortlist={self.shortlist}; use "
                                       f"--shortlist {max(self.final_k, 12)}, or 0 for none")
        if self.reference_path is not None and not self.retrain_reference:
            raise InvalidArgumentError(f"reference_path gives the finals a reference trained with their extra "
                                       f"training; retrain_reference=False asks for none. Received: "
                                       f"reference_path={self.reference_path!r}; drop one")
        if self.elite not in ELITES:
            raise InvalidArgumentError(f"Unknown elite rule {self.elite!r}. Use one of {', '.join(ELITES)}")
        if self.predictor_path is not None and not self.screen:
            raise InvalidArgumentError(f"predictor_path is used only when screening (screen=True, --predictor). "
                                       f"Received: predictor_path={self.predictor_path!r}, screen=False")
        if self.devices and (self.device is None or self.device != self.devices[0]):
            raise InvalidArgumentError(f"device must be the first of devices. Received: device={self.device!r}, "
                                       f"devices={self.devices!r}")
        if self.require_on is not None and len(self.phones) < 2:
            raise InvalidArgumentError(f"--require-on picks a device model among several phones; give them with "
                                       f"--device (repeated) or --devices all. Received: require_on={self.require_on!r}")

    @property
    def phones(self) -> tuple[str, ...]:
        """Every phone of the run (none on the host)."""
        return tuple(self.devices) or ((self.device,) if self.device else ())

    @property
    def split_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    def data_fingerprint(self) -> dict:
        """What fixes the training images: a prototype or supernet is reusable only under the same one."""
        return {"dataset": self.dataset, "data_path": self.data_path, "n_train": self.n_train, "n_val": self.n_val,
                "data_seed": self.split_seed}

    def reference_recipe(self) -> dict:
        """What the reference's training depends on besides the images: a reference from another run is reusable
        only under the same one. (Over a space root the supernet's epochs train the prototype alone, else as the
        supernet's largest network: the same extra training either way.)"""
        return {"prototype": self.prototype, "prototype_width": self.prototype_width,
                "prototype_epochs": self.prototype_epochs, "learning_rate": self.learning_rate,
                "supernet_epochs": self.supernet_epochs, "supernet_learning_rate": self.supernet_learning_rate,
                "final_epochs": self.final_epochs or self.prototype_epochs,
                "final_learning_rate": self.final_learning_rate, "seed": self.seed}

    def root_spec(self, prototype):
        """The architecture the search space is derived from: ``prototype`` (an ArchSpec), or the space root
        built for the same input and classes."""
        from toolkit.arch import get_prototype

        if self.space_root is None:
            return prototype
        return get_prototype(self.space_root, prototype.input_shape, prototype.num_classes)

    def space(self, prototype):
        """The decision space of this run for ``prototype`` (an ArchSpec): over it, or over the space root."""
        from toolkit.synthesis.space import DecisionSpace

        return DecisionSpace.from_prototype(self.root_spec(prototype), self.width_options, self.resolution_options,
                                            self.separable)

    @property
    def uses_supernet(self) -> bool:
        return self.strategy != "l1prune"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SynthesisConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d.setdefault("resolution_options", (1.0,))  # a run saved before resolution was a decision searched none
        d.setdefault("final_learning_rate", d.get("learning_rate", cls.learning_rate))  # ... and had one rate
        for key in ("requirements", "width_options", "resolution_options", "devices"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


def read_run_file(out: Path) -> dict:
    """The ``run.json`` of a run folder, or one error naming what is wrong with it."""
    run_file = out / "run.json"
    if not run_file.is_file():
        raise InvalidArgumentError(f"{str(out)!r} is not a synthesis run folder (no run.json). "
                                   f"Pass the --out folder of `ferminet synthesize`")
    try:
        saved = json.loads(run_file.read_text())
        SynthesisConfig.from_dict(saved["config"])
        str(saved["run_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"{str(run_file)!r} is damaged ({type(exc).__name__}: {exc}); it cannot be "
                                   f"resumed. Start a new run with another --out") from None
    return saved
