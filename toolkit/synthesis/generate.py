"""Use a learned generator: sample networks from new seeds and keep those that meet the requirements.

``generate(run_dir, seeds)`` opens a finished gensynth run folder (``generator.json`` = theta_G, the prototype,
the channel importance and the trained supernet). For every seed it samples an architecture, takes its weights
from the supernet (batch-norm statistics re-estimated), converts it to int8 (validated on the run's validation
split), measures it on the run's target and checks the run's requirements against the run's search reference,
exactly as the search did. With ``finalize=True`` every sampled network also gets the run's final recipe
(the prototype's epochs and data), int8, validation and test top-1, measurement, and the requirements judged
against the run's final reference: only those are synthesized networks.

Networks that pass are kept as ``generated/seed-<n>...``; the others are reported with the requirement they
missed, and their files removed. The seeds give different networks: a seed whose first draw is the architecture of
an earlier seed of the call (a generator that has committed draws its most likely network often) draws again from
its own stream until it has a new one (``Generator.distinct``; ``redraws`` says which seeds did and how often). A
seed's network is therefore its first draw no earlier seed of the same call drew. Should no new one come within
``MAX_DRAWS`` draws, the seed is reported as a repeat, not evaluated or trained again.

``evaluate_networks(run_dir, propose)`` does the same for any networks of a finished gensynth, random or width
run's space (``benchmarks/proxy_rank.py`` uses it to measure how well the search's proxy ranks final accuracy).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.assess import CandidateResult, Context, assess, write_candidate
from toolkit.synthesis.config import SynthesisConfig
from toolkit.synthesis.finals import run_reference, train_final
from toolkit.synthesis.loop import RunLock, _build_evaluator, _prototype, _search_reference, open_space, read_run_file
from toolkit.synthesis.requirements import parse_requirements


@dataclass(frozen=True)
class GenerateResult:
    run_id: str
    source_run_id: str
    out_dir: str
    networks: tuple[CandidateResult, ...]  # finals when finalized, else the search-evaluated samples
    sampled: tuple[CandidateResult, ...] = ()
    # (candidate id, id of the earlier proposal with the same architecture): proposed again, not evaluated again
    repeats: tuple[tuple[str, str], ...] = ()
    # (candidate id, draw number): seeds whose first draws were earlier seeds' networks, and which draw was new
    redraws: tuple[tuple[str, int], ...] = ()

    @property
    def passing(self) -> tuple[CandidateResult, ...]:
        return tuple(n for n in self.networks if n.feasible and n.test_feasible is not False)


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


def _discard_files(c: CandidateResult) -> CandidateResult:
    for path in (c.keras_path, c.tflite_path):
        if path and Path(path).exists():
            Path(path).unlink()
    return dataclasses.replace(c, keras_path=None, tflite_path=None)


def generate(run_dir: str | Path, seeds, db: str | Path | None = None, *, finalize: bool = False,
             progress: bool = False) -> GenerateResult:
    from toolkit.synthesis.generator import Generator

    run = Path(run_dir)
    saved = read_run_file(run)
    config = SynthesisConfig.from_dict(saved["config"])
    if config.strategy != "gensynth":
        raise InvalidArgumentError(f"Run {saved['run_id']} used strategy {config.strategy!r}; only gensynth runs "
                                   f"learn a generator")
    generator = Generator.load(run / "generator.json")
    seeds = parse_seeds(seeds) if isinstance(seeds, str) else tuple(seeds)

    samples, redrawn = generator.distinct(seeds)

    def propose(space):
        return [(f"seed-{s.seed}", s.seed, s.choices) for s in samples]

    result = evaluate_networks(run, propose, db, finalize=finalize, progress=progress, kind="generate",
                               strategy="generated", command=f"generate {run} --seeds {','.join(map(str, seeds))}"
                               + (" --finalize" if finalize else ""),
                               options={"seeds": list(seeds), "redraws": {str(s): n for s, n in redrawn}})
    return dataclasses.replace(result, redraws=tuple((f"seed-{s}", n) for s, n in redrawn))


def open_finished_run(ctx: Context, store, run_id: str) -> tuple[CandidateResult, dict]:
    """Set a finished run's space, prototype (and space root) and evaluator on ``ctx``, all read from its folder
    (``ctx.out``) and ``store``. Returns (its prototype, its stored candidates by id)."""
    done = {r["candidate_id"]: r for r in store.query(
        "SELECT * FROM candidates WHERE run_id=? ORDER BY cycle, candidate_id", (run_id,))}
    if "prototype" not in done:
        raise ToolkitError(f"The store {str(store.path)!r} has no prototype for run {run_id}; pass its --db")
    open_space(ctx)
    proto = _prototype(ctx, store, run_id, done)
    _build_evaluator(ctx)
    return proto, done


def evaluate_networks(run_dir: str | Path, propose, db: str | Path | None = None, *, finalize: bool = False,
                      progress: bool = False, kind: str = "sample", strategy: str = "sampled", command: str = "",
                      options: dict | None = None, keep: bool = True) -> GenerateResult:
    """Evaluate networks of a finished run's space as its search did, and with ``finalize`` as its finals were.

    ``propose(space)`` -> [(candidate_id, seed or None, choices)], called once the run's space is open. Each
    network is stored (as ``strategy``) under a run of its own (``kind``, ``command``, ``options``) in the run's
    store; with ``keep`` the files of those that meet the requirements stay in RUN/generated/. A proposal whose
    architecture an earlier one has is listed in ``repeats`` instead. Needs a trained supernet."""
    from toolkit.store import Store
    from toolkit.synthesis.supernet import has_checkpoint, read_state

    run = Path(run_dir)
    saved = read_run_file(run)
    config = SynthesisConfig.from_dict(saved["config"])
    if not config.uses_supernet:
        raise InvalidArgumentError(f"Run {saved['run_id']} ({config.strategy}) has no supernet to take weights from; "
                                   f"pass a gensynth, random or width run")
    if config.supernet_path is None:
        state = read_state(run / "supernet") if has_checkpoint(run / "supernet") else {}
        if state.get("epochs_done") != config.supernet_epochs:
            raise InvalidArgumentError(f"The run in {str(run)!r} has not finished training its supernet; resume it "
                                       f"first: ferminet synthesize --out {run} --resume")
    db = Path(db or saved.get("db", "ferminet.db"))
    source_run = saved["run_id"]
    with RunLock(run):
        ctx = Context(config, run, parse_requirements(config.requirements))
        ctx.progress = progress
        with Store(db) as store:
            proto, done = open_finished_run(ctx, store, source_run)  # refuses a mismatched run before any write
            out = run / "generated"
            out.mkdir(exist_ok=True)
            _search_reference(ctx, store, source_run, done, proto)
            if finalize:
                run_reference(ctx, store, source_run, done, proto)
            proposals = propose(ctx.space)
            run_id = store.start_run(kind, command=command,
                                     options={"source_run": source_run, "finalize": finalize, **(options or {})})
            sampled, networks, first_of, repeats = [], [], {}, []
            for cid, seed, choices in proposals:
                name = f"{config.prototype}_{cid}"
                spec = ctx.space.apply(choices, name=name)
                spec_hash, spec_json = spec.spec_hash(), spec.to_json()
                if spec_hash in first_of:  # the same network: evaluating it again would only repeat the noise
                    repeats.append((cid, first_of[spec_hash]))
                    continue
                first_of[spec_hash] = cid
                try:
                    model, spec = ctx.evaluator.proxy(choices, name=name)
                    c, stored = assess(ctx, model, spec, candidate_id=cid, cycle=0, strategy=strategy, seed=seed,
                                       choices=choices, phase="search", reference=ctx.search_reference,
                                       folder=out)
                except ToolkitError as exc:
                    c, stored = CandidateResult(cid, 0, strategy, seed, spec_hash, "failed",
                                                f"{type(exc).__name__}: {exc}", choices=choices), None
                if finalize or not (keep and c.feasible):
                    c = _discard_files(c)
                write_candidate(store, run_id, c, spec_json, stored)
                sampled.append(c)
                if not finalize:
                    networks.append(c)
                    continue
                fid = f"{cid}-final"
                ref = ctx.final_reference
                try:
                    model, spec = train_final(ctx, choices, f"{config.prototype}_{fid}")
                    f, stored = assess(ctx, model, spec, candidate_id=fid, cycle=0, strategy=strategy, seed=seed,
                                       choices=choices, phase="final", reference=ref.int8_top1,
                                       test_reference=ref.test_top1, folder=out, parent=cid,
                                       proxy_top1=c.int8_top1)
                except ToolkitError as exc:
                    f, stored = CandidateResult(fid, 0, strategy, seed, spec_hash, "failed",
                                                f"{type(exc).__name__}: {exc}", choices=choices,
                                                phase="final", parent=cid), None
                if not (keep and f.feasible and f.test_feasible):
                    f = _discard_files(f)
                write_candidate(store, run_id, f, spec_json, stored)
                networks.append(f)
            store.finish_run(run_id)
    return GenerateResult(run_id, source_run, str(out), tuple(networks), tuple(sampled), tuple(repeats))
