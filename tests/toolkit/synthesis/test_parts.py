"""Requirements, objective, decision space, generator, update rule, inheritance: fast unit tests."""
import itertools

import numpy as np
import pytest

from toolkit.arch import ArchSpec, build_model, count_macs, get_prototype
from toolkit.errors import InvalidArgumentError
from toolkit.synthesis import DecisionSpace, Generator, netscore, parse_requirement, parse_requirements, score
from toolkit.synthesis.inherit import inherit_weights, l1_importance
from toolkit.synthesis.inquisitor import Observation, apply_prior, form_insights, taylor_importance, update
from toolkit.synthesis.requirements import check, relative_metrics


@pytest.mark.parametrize("text,metric,op,bound", [
    ("accuracy>=0.92", "accuracy", ">=", 0.92), ("accuracy>=92%", "accuracy", ">=", 0.92),
    ("accuracy_drop<=1.0pt", "accuracy_drop", "<=", 1.0), ("latency_ms<=3", "latency_ms", "<=", 3.0),
    ("energy_mj<=0.5", "energy_mj", "<=", 0.5), ("size_kb<=150", "size_kb", "<=", 150.0),
    ("macs<=5M", "macs", "<=", 5e6), ("params<=100k", "params", "<=", 1e5)])
def test_requirement_forms(text, metric, op, bound):
    r = parse_requirement(text)
    assert (r.metric, r.op) == (metric, op) and r.bound == pytest.approx(bound)


@pytest.mark.parametrize("text", ["speed<=3", "macs<=5 apples", "accuracy>=1.5", "latency_ms<=3pt", "size_kb<=5M",
                                  "", "accuracy"])
def test_unparseable_requirements(text):
    with pytest.raises(InvalidArgumentError):
        parse_requirement(text)


def test_check_reports_what_failed():
    reqs = parse_requirements("macs<=5M, accuracy>=0.9")
    ok, reason, violation = check(reqs, {"macs": 6e6, "accuracy": 0.95})
    assert not ok and "macs<=5M (got 6e+06)" in reason and violation == pytest.approx(0.2)
    assert check(reqs, {"macs": 4e6, "accuracy": 0.95})[0]


def test_relative_bounds_compare_against_the_prototype():
    r = parse_requirement("energy_mj<=0.7x")
    assert (r.metric, r.bound, r.relative) == ("energy_mj", 0.7, True)
    reqs = parse_requirements("energy_mj<=0.7x, macs<=0.1x")
    proto = {"energy_mj": 6.0, "macs": 31e6}
    # 3 mJ is 0.5x the prototype's: met; 5 mJ is 0.83x: not met, though it is far below 0.7 in absolute mJ terms
    assert check(reqs, relative_metrics({"energy_mj": 3.0, "macs": 3e6}, proto))[0]
    ok, reason, _ = check(reqs, relative_metrics({"energy_mj": 5.0, "macs": 3e6}, proto))
    assert not ok and reason == "energy_mj<=0.7x (got 0.833333x)"
    # the prototype itself is 1x, so it never meets a bound below 1x; a missing measurement never meets one
    assert not check(reqs, relative_metrics(proto, None))[0]
    assert "not measured" in check(reqs, relative_metrics({"energy_mj": None, "macs": 3e6}, proto))[1]


@pytest.mark.parametrize("text", ["accuracy>=0.5x", "accuracy_drop<=0.5x", "energy_mj<=0x"])
def test_relative_bounds_only_for_costs(text):
    with pytest.raises(InvalidArgumentError, match="x"):
        parse_requirement(text)


def test_netscore_matches_its_formula():
    # a = 90 %, p = 0.27 M, m = 0.041 G
    expected = 20 * np.log10(90 ** 2 / (0.27 ** 0.5 * 0.041 ** 0.5))
    assert netscore(0.9, 270_000, 41_000_000) == pytest.approx(expected)
    assert score("energy", 0.9, 1, 41_000_000, energy_mj=0.5) > score("energy", 0.9, 1, 41_000_000, energy_mj=1.0)
    with pytest.raises(InvalidArgumentError, match="energy measurement"):
        score("energy", 0.9, 1, 1)


def test_space_of_resnet20_and_uniform_width():
    space = DecisionSpace.from_prototype(get_prototype("resnet20"))
    names = [d.name for d in space.decisions]
    assert names[:3] == ["width:g0", "width:g1", "width:g2"]
    assert "keep:s2b0" not in names and "keep:s2b1" in names  # a strided block cannot be skipped
    quarter = space.apply(space.uniform_width(0.25))
    assert [b.filters for b in quarter.blocks if b.kind == "resnet_basic"][::3] == [4, 8, 16]
    ratio = count_macs(build_model(get_prototype("resnet20"))) / count_macs(build_model(quarter))
    assert 14 < ratio < 18
    assert space.decisions[-1].name == "resolution:input" and space.decisions[-1].options == (14, 18, 20, 24, 28)
    half = space.apply({"resolution:input": 14})
    assert half.resolution == 14 and space.apply(space.prototype_choices()).resolution is None
    assert ArchSpec.from_json(half.to_json()) == half and half.spec_hash() != space.prototype.spec_hash()
    # every block runs on a quarter of the positions (7x7 stage 3 becomes 4x4: "same" padding rounds up)
    assert 3.5 < count_macs(build_model(get_prototype("resnet20"))) / count_macs(build_model(half)) < 4
    assert not any(d.kind == "resolution" for d in DecisionSpace.from_prototype(get_prototype("resnet20"),
                                                                                 resolutions=(1.0,)).decisions)
    mbv2 = DecisionSpace.from_prototype(get_prototype("mobilenetv2"))
    assert any(d.kind == "kernel" for d in mbv2.decisions) and any(d.kind == "expansion" for d in mbv2.decisions)


def test_generator_is_deterministic_per_seed_and_round_trips(tmp_path):
    gen = Generator(DecisionSpace.from_prototype(get_prototype("resnet20")))
    assert gen.sample(7).spec == gen.sample(7).spec
    assert len({gen.sample(s).spec.spec_hash() for s in range(20)}) > 10
    gen.probs["width:g0"] = np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    gen.save(tmp_path / "g.json")
    again = Generator.load(tmp_path / "g.json")
    assert np.allclose(again.probs["width:g0"], gen.probs["width:g0"])
    assert again.sample(3).spec == gen.sample(3).spec


def test_a_committed_generator_still_gives_each_seed_a_network_of_its_own():
    gen = Generator(DecisionSpace.from_prototype(get_prototype("resnet20")))
    for d in gen.space.decisions:  # all but the floor on one option, as a generator that has committed
        gen.probs[d.name] = np.full(len(d.options), 0.02)
        gen.probs[d.name][0] = 1 - 0.02 * (len(d.options) - 1)
    seeds = range(1, 7)
    assert len({gen.sample(s).spec.spec_hash() for s in seeds}) < len(seeds)  # plain draws repeat here
    samples, redrawn = gen.distinct(seeds)
    assert [s.seed for s in samples] == list(seeds)
    assert len({s.spec.spec_hash() for s in samples}) == len(seeds)
    assert samples[0].spec == gen.sample(1).spec  # the first seed keeps its first draw
    assert redrawn and all(n > 1 for _, n in redrawn)
    again, _ = gen.distinct(seeds)
    assert [s.spec for s in again] == [s.spec for s in samples]  # deterministic for the same seeds
    for seed, n in redrawn:  # a redrawn seed's network is the n-th draw of its own stream
        nth = next(itertools.islice(gen.draws(seed), n - 1, None))
        assert nth.spec == samples[list(seeds).index(seed)].spec


def test_update_moves_mass_toward_elites_and_away_from_infeasible():
    gen = Generator(DecisionSpace.from_prototype(get_prototype("resnet20")))
    w = gen.space.decisions[0]
    small, big = w.options[0], w.options[-1]
    obs = [Observation({w.name: small}, 90.0, True, 0.0), Observation({w.name: small}, 89.0, True, 0.0),
           Observation({w.name: big}, 95.0, False, 0.5), Observation({w.name: big}, 94.0, False, 0.3)]
    before = gen.probs[w.name].copy()
    update(gen, obs)
    after = gen.probs[w.name]
    assert after[0] > before[0] and after[-1] < before[-1] and gen.cycle == 1
    assert after.min() >= 0.019 and after.sum() == pytest.approx(1.0)


def test_full_width_inheritance_reproduces_the_parent_and_children_run(fmnist_small):
    spec = get_prototype("resnet20", width_multiplier=0.5)
    parent = build_model(spec, seed=0)
    x = fmnist_small.x_test[:16]
    importance = taylor_importance(parent, fmnist_small.x_train[:64], fmnist_small.y_train[:64])
    assert set(importance) >= {"s1b0_conv1", "s3b2_conv2", "stem_conv"}
    space = DecisionSpace.from_prototype(spec)
    full = space.apply(space.prototype_choices())
    child = build_model(full, seed=9)
    inherit_weights(parent, child, space, full, importance)
    assert np.allclose(parent.predict(x, verbose=0), child.predict(x, verbose=0), atol=1e-4)
    small = space.apply(space.uniform_width(0.5))
    pruned = build_model(small, seed=9)
    assert inherit_weights(parent, pruned, space, small, l1_importance(parent)) > 20
    assert pruned.predict(x, verbose=0).shape == (16, 10)


def test_supernet_sub_networks_equal_their_extracted_int8_models(fmnist_small, tmp_path):
    """Masked channels, gated blocks and a smaller input resolution in the supernet compute exactly what the
    extracted sub-network (with its own resize layer) computes; that network converts to full int8."""
    from toolkit.convert import convert_model
    from toolkit.synthesis.supernet import Supernet, random_choices

    spec = get_prototype("resnet20", (28, 28, 1), 10, width_multiplier=0.5)
    space = DecisionSpace.from_prototype(spec)
    sn = Supernet.from_prototype(build_model(spec, seed=0), space, l1_importance(build_model(spec, seed=0)))
    x = fmnist_small.x_test[:8]
    rng = np.random.default_rng(3)
    picks = [random_choices(space, rng) for _ in range(6)] + [{**space.prototype_choices(), "resolution:input": 18}]
    assert len({space.resolution_of(c) for c in picks}) >= 3
    for choices in picks:
        child, child_spec = sn.extract(choices)
        assert child_spec.resolution == (None if space.resolution_of(choices) == 28 else space.resolution_of(choices))
        assert np.allclose(sn(x, choices).numpy(), child(x, training=False).numpy(), atol=1e-5)
    result = convert_model(child, fmnist_small, tmp_path / "r18.tflite", eval_samples=100)
    assert result.fully_int8 and dict(result.op_histogram)["RESIZE_BILINEAR"] == 1


def test_separable_blocks_in_the_supernet_equal_their_extracted_models(fmnist_small):
    """With --separable every ResNet block gets a separable decision; the supernet holds both forms, and a
    sub-network picking either form (with masks, gates and resolution) computes what its extracted model computes,
    which has exactly the separable layers it picked and MACs to match."""
    from toolkit.synthesis.supernet import Supernet, random_choices, smallest_choices

    spec = get_prototype("resnet20", (28, 28, 1), 10, width_multiplier=0.5)
    space = DecisionSpace.from_prototype(spec, separable=True)
    assert [d.target for d in space.decisions if d.kind == "separable"] == [
        f"s{s}b{i}" for s in (1, 2, 3) for i in range(3)]
    assert not DecisionSpace.from_prototype(spec).separable  # opt-in
    sn = Supernet.from_prototype(build_model(spec, seed=0), space, l1_importance(build_model(spec, seed=0)))
    x = fmnist_small.x_test[:8]
    rng = np.random.default_rng(5)
    plain = space.prototype_choices()
    every = {**plain, **{d.name: True for d in space.decisions if d.kind == "separable"}}
    picks = [smallest_choices(space), every, {**plain, "separable:s2b0": True}] + \
        [random_choices(space, rng) for _ in range(4)]
    for choices in picks:
        child, child_spec = sn.extract(choices)
        picked = {d.target for d in space.decisions if d.kind == "separable" and choices[d.name]}
        layers = {layer.name for layer in child.layers}
        for block in child_spec.active_blocks:
            assert (f"{block.name}_sep1_dw" in layers) == (block.name in picked)
            assert (f"{block.name}_conv1" in layers) == (block.kind == "resnet_basic" and block.name not in picked)
        assert np.allclose(sn(x, choices).numpy(), child(x, training=False).numpy(), atol=1e-5)
    # Every block separable at the same widths: the 3x3 convs' MACs shrink about 9x / (1 + 9 / width).
    full, _ = sn.extract(plain)
    separable, spec_sep = sn.extract(every)
    assert count_macs(full) / count_macs(separable) > 4
    assert spec_sep.spec_hash() != space.apply(plain).spec_hash()
    assert ArchSpec.from_json(spec_sep.to_json()) == spec_sep and '"separable"' not in space.apply(plain).to_json()


def test_insights_prior_tilts_widths(fmnist_small):
    spec = get_prototype("resnet20", width_multiplier=0.5)
    model = build_model(spec, seed=0)
    space = DecisionSpace.from_prototype(spec)
    importance = taylor_importance(model, fmnist_small.x_train[:64], fmnist_small.y_train[:64])
    insights = form_insights(space, model, importance)
    assert sum(insights.cost_share.values()) == pytest.approx(1.0) and insights.cost_basis == "macs"
    gen = Generator(space)
    apply_prior(gen, insights)
    cheapest = max(insights.cheapness, key=insights.cheapness.get)
    p = gen.probs[f"width:{cheapest}"]
    assert p[0] > p[-1]  # the group that costs most per unit of importance leans to small widths


def test_final_k_zero_is_search_only_and_negative_is_refused():
    from toolkit.synthesis import CandidateResult, SynthesisConfig
    from toolkit.synthesis.finals import choose_finals

    ok = [CandidateResult(f"c000-0{i}", 0, "gensynth", i, f"h{i}", "ok", None, score=float(i), feasible=True)
          for i in range(3)]
    assert choose_finals(ok, 0) == []
    assert [c.candidate_id for c in choose_finals(ok, 2)] == ["c000-02", "c000-01"]  # best U first
    assert SynthesisConfig(final_k=0).final_k == 0
    with pytest.raises(InvalidArgumentError, match="final_k must be an integer >= 0"):
        SynthesisConfig(final_k=-1)


def test_closest_finals_skip_twins_and_spread_down_the_front():
    from toolkit.synthesis import CandidateResult
    from toolkit.synthesis.finals import choose_finals

    def cand(cid, violation, macs, feasible=False):
        return CandidateResult(cid, 0, "gensynth", 0, f"h-{cid}", "ok", None, macs=macs, score=100.0 - macs / 1e6,
                               feasible=feasible, violation=violation)

    closest, twin = cand("closest", 0.10, 2_400_000), cand("twin", 0.10, 2_600_000)  # same proxy, more MACs
    rest = [cand("c2", 0.11, 2_200_000), cand("c3", 0.12, 1_700_000), cand("c4", 0.14, 1_250_000),
            cand("c5", 0.16, 900_000), cand("dominated", 0.15, 1_800_000)]
    pool = [twin, closest] + rest
    # the closest first, then the front points nearest 1/sqrt(2) and 1/2 of its MACs; never the twin
    assert [c.candidate_id for c in choose_finals(pool, 3)] == ["closest", "c3", "c4"]
    assert [c.candidate_id for c in choose_finals(pool, 1)] == ["closest"]
    met = cand("met", 0.0, 3_000_000, feasible=True)
    assert [c.candidate_id for c in choose_finals(pool + [met], 3)] == ["met", "closest", "c4"]
    everything = [c.candidate_id for c in choose_finals(pool, 10)]  # a short front: the rest fill the places
    assert sorted(everything) == sorted(c.candidate_id for c in pool) and everything[-2:] == ["twin", "dominated"]


def test_equal_rewards_rank_by_u_so_the_cheaper_twin_is_the_elite():
    gen = Generator(DecisionSpace.from_prototype(get_prototype("resnet20")))
    w = gen.space.decisions[0]
    small, big = w.options[0], w.options[-1]
    # all miss the requirements by the same amount (as twins the proxy cannot tell apart do); the small ones
    # cost less (higher U) and are listed first
    obs = [Observation({w.name: small}, 10.0, False, 0.1), Observation({w.name: small}, 9.0, False, 0.1),
           Observation({w.name: big}, 8.0, False, 0.1), Observation({w.name: big}, 7.0, False, 0.1)]
    before = gen.probs[w.name].copy()
    update(gen, obs)
    assert gen.probs[w.name][0] > before[0] and gen.probs[w.name][-1] < before[-1]


def test_front_elite_keeps_the_cheap_networks_the_reward_elite_drops():
    from toolkit.synthesis.inquisitor import by_crowding, pareto_layers

    space = DecisionSpace.from_prototype(get_prototype("resnet20"))
    w = space.decisions[0]
    small, big = w.options[0], w.options[-1]
    # nothing meets the requirements; the big ones miss by less (more accurate) but cost more
    obs = [Observation({w.name: big}, 1.0, False, 0.10, 3_000_000),
           Observation({w.name: big}, 1.0, False, 0.11, 2_900_000),
           Observation({w.name: small}, 2.0, False, 0.13, 1_000_000),
           Observation({w.name: small}, 2.0, False, 0.20, 1_100_000)]
    assert pareto_layers(obs, [0, 1, 2, 3]) == [[0, 1, 2], [3]]
    moved = {}
    for rule in ("reward", "front"):
        gen = Generator(space)
        before = gen.probs[w.name].copy()
        update(gen, obs, elite_rule=rule)
        moved[rule] = gen.probs[w.name][0] - before[0]
    # the reward elite is the two big ones; the front elite the two ends of the first layer, one of them small
    assert by_crowding(obs, [0, 1, 2]) == [0, 2, 1]
    assert moved["front"] > moved["reward"]
    with pytest.raises(InvalidArgumentError, match="Unknown elite rule 'best'"):
        from toolkit.synthesis import SynthesisConfig
        SynthesisConfig(elite="best")


def test_a_saved_network_of_another_architecture_is_refused_as_the_prototype(tmp_path):
    """An earlier run's prototype or reference is loaded only when its layers are those the run's prototype builds;
    anything else is refused with the file, the role and the fix."""
    import types

    from toolkit.synthesis.assess import load_prototype_file

    ctx = types.SimpleNamespace(config=types.SimpleNamespace(prototype="resnet20", dataset="fashion_mnist"))
    spec = get_prototype("resnet20", (28, 28, 1), 10, 0.25)
    build_model(spec).save(tmp_path / "mine.keras")
    build_model(get_prototype("dsnet", (28, 28, 1), 10, 0.25)).save(tmp_path / "other.keras")
    assert [w.shape for w in load_prototype_file(ctx, tmp_path / "mine.keras", spec, role="prototype",
                                                 fix="-").get_weights()] == \
        [w.shape for w in build_model(spec).get_weights()]
    with pytest.raises(InvalidArgumentError, match=r"other\.keras' is not a resnet20 reference for fashion_mnist "
                                                   r"built by ferminet \(its layers differ\); pass --reference-from"):
        load_prototype_file(ctx, tmp_path / "other.keras", spec, role="reference",
                            fix="pass --reference-from a run of the same prototype and dataset")
