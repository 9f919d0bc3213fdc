"""EfficientNet compound scaling: the phi table and the scaled stage lists."""
from __future__ import annotations

import math
import pathlib

import pytest

from effgan.models import efficientnet_scaling as es


def test_b0_is_the_published_stage_table():
    stages = es.stage_list(0)
    assert [s.repeats for s in stages] == [1, 2, 2, 3, 3, 4, 1]
    assert [s.kernel_size for s in stages] == [3, 3, 5, 3, 5, 5, 3]
    assert [s.stride for s in stages] == [1, 2, 2, 2, 1, 2, 1]
    assert [s.expand_ratio for s in stages] == [1, 6, 6, 6, 6, 6, 6]
    assert [s.channels for s in stages] == [16, 24, 40, 80, 112, 192, 320]
    assert es.preset(0).stem_channels == 32


@pytest.mark.parametrize("phi", [0, 1, 2, 3, 5])
def test_scaling_rules(phi):
    row = es.scaling_table([phi])[0]
    assert row.phi == phi
    assert row.depth_mult == pytest.approx(1.2 ** phi)
    assert row.width_mult == pytest.approx(1.1 ** phi)
    exact_res = es.BASE_RESOLUTION * 1.15 ** phi
    assert row.resolution % 32 == 0 and abs(row.resolution - exact_res) <= 16
    for base, scaled in zip(es.B0_STAGES, es.stage_list(phi)):
        assert scaled.repeats == math.ceil(base.repeats * 1.2 ** phi)
        exact = base.channels * 1.1 ** phi
        assert scaled.channels % 8 == 0 and scaled.channels >= 0.9 * exact
        assert abs(scaled.channels - exact) <= 8  # nearest multiple (or the next one up)
        # kernel, stride and expansion do not scale
        assert (scaled.kernel_size, scaled.stride, scaled.expand_ratio) == \
            (base.kernel_size, base.stride, base.expand_ratio)


def test_presets_grow_monotonically():
    presets = [es.preset(phi) for phi in es.PRESET_PHIS]
    for small, big in zip(presets, presets[1:]):
        assert big.resolution > small.resolution
        assert sum(s.repeats for s in big.stages) > sum(s.repeats for s in small.stages)
        assert all(b.channels >= s.channels for s, b in zip(small.stages, big.stages))


def test_round_channels_ninety_percent_rule():
    # 20 * 1.0 -> nearest multiple of 8 would be 16 (< 18 = 90%), so it goes up to 24.
    assert es.round_channels(20, 1.0) == 24
    assert es.round_channels(36, 1.0) == 40
    assert es.round_channels(3, 1.0) == 8


def test_resolution_for_classifier_base():
    assert es.scaled_resolution(0, base_resolution=224) == 224
    assert es.scaled_resolution(2, base_resolution=224, multiple=8) == 296


def test_bad_phi():
    with pytest.raises(ValueError, match="phi"):
        es.stage_list(-1)
    with pytest.raises(ValueError, match="phi"):
        es.preset(1.5)


# The published models' (width, depth) coefficients (Tan & Le, 2019), set model by model.
PUBLISHED = {"B1": (1.0, 1.1), "B2": (1.1, 1.2), "B3": (1.2, 1.4)}


def _published_stages(width: float, depth: float):
    return (es.round_channels(es.B0_STEM_CHANNELS, width),
            [(math.ceil(s.repeats * depth), es.round_channels(s.channels, width)) for s in es.B0_STAGES])


@pytest.mark.parametrize("phi, published", [(1, "B2"), (2, "B3")])
def test_phi_presets_equal_published_stage_tables_as_the_docs_say(phi, published):
    preset = es.preset(phi)
    ours = (preset.stem_channels, [(s.repeats, s.channels) for s in preset.stages])
    assert ours == _published_stages(*PUBLISHED[published])
    docs = " ".join((pathlib.Path(__file__).parents[1] / "docs" / "MODELS.md").read_text().split())
    assert "phi = 1 has exactly the published B2's stem and stages (widths and repeats)" in docs
    assert "phi = 2 the published B3's" in docs
    assert "deeper stages" not in docs
