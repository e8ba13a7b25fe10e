"""Use a learned generator: sample networks from new seeds and keep those that meet the requirements.

``generate(run_dir, seeds)`` loads ``generator.json`` (theta_G), the prototype's weights and the
inquisitor's importance from a synthesis run folder; for every seed it samples an architecture, inherits
weights, fine-tunes with the run's recipe, converts to int8 (validated), measures on the run's target and
checks the run's requirements. Networks that pass are written as ``generated/seed-<n>.keras`` and
``generated/seed-<n>_int8.tflite``; the others are reported with the requirement they missed, and their
files removed.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.loop import CandidateResult, SynthesisConfig, _Context, _evaluate, _write_candidate
from toolkit.synthesis.requirements import parse_requirements


@dataclass(frozen=True)
class GenerateResult:
    run_id: str
    source_run_id: str
    out_dir: str
    networks: tuple[CandidateResult, ...]

    @property
    def passing(self) -> tuple[CandidateResult, ...]:
        return tuple(n for n in self.networks if n.feasible)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"1-5"``, ``"3,7,9"`` or ``"1-3,10"`` -> seeds."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                seeds += range(lo, hi + 1)
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise InvalidArgumentError(f"Cannot parse seeds {text!r}. Write e.g. '1-5' or '3,7,9'") from None
    if not seeds or any(s < 0 for s in seeds):
        raise InvalidArgumentError(f"Seeds must be integers >= 0. Received: {text!r}")
    return tuple(dict.fromkeys(seeds))


def generate(run_dir: str | Path, seeds, db: str | Path | None = None) -> GenerateResult:
    import keras

    from toolkit.store import Store
    from toolkit.synthesis.generator import Generator

    run = Path(run_dir)
    run_file = run / "run.json"
    if not run_file.is_file():
        raise InvalidArgumentError(f"{str(run)!r} is not a synthesis run folder (no run.json). "
                                   f"Pass the --out folder of `ferminet synthesize`")
    saved = json.loads(run_file.read_text())
    config = SynthesisConfig.from_dict(saved["config"])
    if config.strategy != "gensynth":
        raise InvalidArgumentError(f"Run {saved['run_id']} used strategy {config.strategy!r}; only gensynth runs "
                                   f"learn a generator")
    generator = Generator.load(run / "generator.json")
    db = Path(db or saved.get("db", "ferminet.db"))
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else tuple(seeds)
    ctx = _Context(config, run, parse_requirements(config.requirements))
    ctx.space = generator.space
    ctx.prototype_model = keras.models.load_model(run / "prototype.keras", compile=False)
    with np.load(run / "importance.npz") as npz:
        ctx.importance = {k: npz[k] for k in npz.files}
    out = run / "generated"
    out.mkdir(exist_ok=True)
    with Store(db) as store:
        rows = store.query("SELECT int8_top1 FROM candidates WHERE run_id=? AND candidate_id='prototype'",
                           (saved["run_id"],))
        if not rows:
            raise ToolkitError(f"The store {str(db)!r} has no prototype for run {saved['run_id']}; pass its --db")
        ctx.proto_int8_top1 = rows[0]["int8_top1"]
        run_id = store.start_run("generate", command=f"generate {run} --seeds {','.join(map(str, seeds))}",
                                 options={"source_run": saved["run_id"], "seeds": list(seeds)})
        networks = []
        for seed in seeds:
            sample = generator.sample(seed)
            cid = f"seed-{seed}"
            try:
                c, stored = _evaluate(ctx, sample.spec, candidate_id=cid, cycle=0, strategy="generated", seed=seed,
                                      choices=sample.choices, importance=ctx.importance, folder=out)
            except ToolkitError as exc:
                c, stored = CandidateResult(cid, 0, "generated", seed, sample.spec.spec_hash(), "failed",
                                            f"{type(exc).__name__}: {exc}", choices=sample.choices), None
            if not c.feasible:
                for path in (c.keras_path, c.tflite_path):
                    if path and Path(path).exists():
                        Path(path).unlink()
                c = dataclasses.replace(c, keras_path=None, tflite_path=None)
            _write_candidate(store, run_id, c, sample.spec.to_json(), stored)
            networks.append(c)
        store.finish_run(run_id)
    return GenerateResult(run_id, saved["run_id"], str(out), tuple(networks))
