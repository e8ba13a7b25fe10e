"""The generator learns: with fixed seeds and a small budget, the share of sampled candidates that meet the
requirements rises from the first cycle to the last for gensynth, and not for random search on the same budget
(same space, same prototype, same recipe, real training/conversion/measurement)."""
import pytest

from toolkit.synthesis import SynthesisConfig, run_synthesis


def _share(result, cycle):
    cands = [c for c in result.candidates if c.cycle == cycle]
    return sum(c.feasible for c in cands) / len(cands)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    ws = tmp_path_factory.mktemp("learning")
    db = ws / "l.db"
    common = dict(prototype="resnet20", prototype_width=0.5, n_train=300, prototype_epochs=1, finetune_epochs=1,
                  finetune_n_train=128, n_eval=50, cycles=3, population=6, profile_runs=3, probe_samples=32,
                  seed=3, requirements=("macs<=1.0M",))  # the prototype has 7.8M: only small children pass
    gensynth = run_synthesis(SynthesisConfig(strategy="gensynth", **common), ws / "g", db, progress=False)
    random = run_synthesis(SynthesisConfig(strategy="random", prototype_path=str(ws / "g" / "prototype.keras"),
                                           **common), ws / "r", db, progress=False)
    return gensynth, random


def test_feasible_share_rises_for_gensynth_not_for_random(runs):
    gensynth, random = runs
    g_first, g_last = _share(gensynth, 0), _share(gensynth, 2)
    r_first, r_last = _share(random, 0), _share(random, 2)
    assert g_last > g_first, (g_first, g_last)
    assert g_last > r_last and r_last <= r_first + 0.34, (g_last, r_first, r_last)


def test_learned_generator_samples_meet_the_requirement_more_often_than_uniform(runs):
    from toolkit.arch import build_model, count_macs
    from toolkit.synthesis import Generator

    gensynth, _ = runs
    learned = Generator.load(f"{gensynth.out_dir}/generator.json")
    uniform = Generator(learned.space)
    assert learned.entropy() < uniform.entropy()

    def share_small(gen):  # fraction of 20 fresh seeds whose network has <= 1.0M MACs (no training needed)
        return sum(count_macs(build_model(gen.sample(s).spec)) <= 1_000_000 for s in range(1000, 1020)) / 20

    assert share_small(learned) > share_small(uniform) + 0.2
