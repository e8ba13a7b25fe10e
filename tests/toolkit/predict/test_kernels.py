"""Kernels read from real converted .tflite files with the LiteRT flatbuffer schema."""
from __future__ import annotations

import collections

import pytest

from toolkit.errors import ModelFileError
from toolkit.predict import read_kernels, total_macs
from tests.toolkit.predict.conftest import ARCHS


def test_kernels_of_a_converted_network(nb201_files):
    kernels = read_kernels(nb201_files[ARCHS[3]])  # 3x3 convs on all six edges, one cell per stage
    stem = kernels[0]
    assert (stem.op, stem.kernel_h, stem.stride_h, stem.in_c, stem.out_c) == ("CONV_2D", 3, 1, 3, 16)
    assert stem.macs == 32 * 32 * 16 * 3 * 3 * 3 and stem.dtype == "FLOAT32" and not stem.quantized
    assert stem.weight_bytes == (16 * 3 * 3 * 3 + 16) * 4 and stem.in_bytes == 32 * 32 * 3 * 4
    convs = [k for k in kernels if k.op == "CONV_2D" and k.kernel_h == 3 and k.in_c == k.out_c == 64
             and k.stride_h == 1]
    assert len(convs) == 6 + 1  # six cell edges and the reduction block's second conv
    assert all(k.macs == 8 * 8 * 64 * 9 * 64 for k in convs)
    strided = [k for k in kernels if k.stride_h == 2]
    assert {(k.in_h, k.out_h) for k in strided} == {(32, 16), (16, 8)}
    adds = [k for k in kernels if k.op == "ADD"]
    assert adds and all(k.n_inputs == 2 for k in adds)
    assert kernels[-1].op == "FULLY_CONNECTED" and kernels[-1].out_c == 10
    assert all(k.name for k in kernels)


def test_heavier_cells_have_more_macs(nb201_files):
    macs = [total_macs(read_kernels(nb201_files[a])) for a in ARCHS]
    assert macs[0] < macs[1] < macs[2] < macs[3]
    light = collections.Counter(k.op for k in read_kernels(nb201_files[ARCHS[0]]))
    assert "AVERAGE_POOL_2D" in light  # the reduction blocks' 2x2 pools; the cell itself is only skips


def test_not_a_tflite_file(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="TFL3"):
        read_kernels(junk)
    with pytest.raises(ModelFileError, match="Received"):
        read_kernels(tmp_path / "missing.tflite")
