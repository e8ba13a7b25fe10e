"""NAS-Bench-201 cells: parsing, which edges a network computes, which cells are constant, kernel composition."""
from __future__ import annotations

import collections

import pytest

from toolkit.errors import InvalidArgumentError
from toolkit.predict.nb201 import Edge, live_edges, network_kernels, output_depends_on_input, parse_cell


def test_parse_cell_reads_six_edges_and_names_bad_strings():
    edges = parse_cell("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|skip_connect~1|none~2|")
    assert edges[0] == Edge(0, 1, "nor_conv_3x3") and edges[-1] == Edge(2, 3, "none") and len(edges) == 6
    for bad in ("", "nor_conv_3x3~0", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|none~1|"):
        with pytest.raises(InvalidArgumentError, match="Received"):
            parse_cell(bad)


def test_edges_kept_dead_code_dropped_zero_node_computed():
    # node 1 and 2 lead nowhere but through 'none': dead code; node 3 = pool(node 0)
    assert live_edges("|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|") == (
        Edge(0, 3, "avg_pool_3x3"),)
    # node 1 gets only 'none' (a zero tensor); the ops leaving it still run
    kept = live_edges("|none~0|+|none~0|avg_pool_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    assert Edge(1, 2, "avg_pool_3x3") in kept and Edge(2, 3, "nor_conv_3x3") in kept and len(kept) == 4


def test_constant_cells_are_those_measured_near_zero(nb201_csv):
    depends = nb201_csv["arch"].map(output_depends_on_input)
    near_zero = nb201_csv["raspi4_ms"] < 1.0
    assert near_zero.sum() == 10
    assert not depends[near_zero].any()  # every network measured ~0 ms has no input->output path
    assert depends.sum() >= 35
    assert not output_depends_on_input("|nor_conv_3x3~0|+|nor_conv_3x3~1|none~0|+|none~0|none~1|none~2|")
    with pytest.raises(InvalidArgumentError, match="does not depend"):
        network_kernels("|nor_conv_3x3~0|+|nor_conv_3x3~1|none~0|+|none~0|none~1|none~2|")


@pytest.mark.parametrize("arch, graph, zeros", [
    # Node 1 has only none edges in, edges out: it is x * 0, computed in each of the 15 cells.
    ("|none~0|+|none~0|avg_pool_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|", "live", 15),
    # Three ReLU-conv edges leave node 0: the converter merges their ReLUs into one and fuses it into the op before
    # the cell (a one-cell probe composed 12 kernels too many here, 1.5 % too many MACs).
    ("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_3x3~2|", "live", 0),
    # Nodes 1 and 2 are dead: graph="all" computes their edges, and the two none edges into node 3 as x * 0.
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|none~2|", "all", 30),
])
def test_probe_composes_to_the_whole_network(tmp_path, arch, graph, zeros):
    composed = network_kernels(arch, cache_dir=tmp_path, graph=graph)
    full = network_kernels(arch, full=True, graph=graph)
    assert collections.Counter(k.signature() for k in composed) == collections.Counter(k.signature() for k in full)
    assert collections.Counter(k.op for k in full)["MUL"] >= zeros  # x * 0 is not folded away
    assert len([p for p in tmp_path.iterdir() if p.suffix == ".json"]) == 1
    assert network_kernels(arch, cache_dir=tmp_path, graph=graph) == composed  # read back from the cache


def test_all_edges_graph_computes_the_dead_edges():
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|none~2|"
    live = collections.Counter(k.op for k in network_kernels(arch, graph="live"))
    every = collections.Counter(k.op for k in network_kernels(arch, graph="all"))
    # live: the 1x1 conv of each of the 15 cells; all: also the two dead 3x3 convs and the dead pool of each cell.
    assert every["CONV_2D"] - live["CONV_2D"] == 2 * 15 and every["AVERAGE_POOL_2D"] - live["AVERAGE_POOL_2D"] == 15
    with pytest.raises(InvalidArgumentError, match="graph must be one of"):
        network_kernels(arch, graph="dead")
