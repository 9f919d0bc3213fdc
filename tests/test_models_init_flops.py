"""init_weights schemes and the hook-based FLOP counter."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from effgan.models import EqualLinear, build, count_flops, init_weights


def net():
    return nn.Sequential(nn.Conv2d(40, 60, 3), nn.BatchNorm2d(60), nn.ConvTranspose2d(60, 50, 3),
                         nn.Flatten(), nn.Linear(300, 200))


@pytest.mark.parametrize("kind,gain", [("normal", 0.02), ("normal", 0.1), ("xavier", 0.5),
                                       ("kaiming", 0.02), ("orthogonal", 1.0)])
def test_init_weight_statistics(kind, gain):
    torch.manual_seed(0)
    model = init_weights(net(), kind=kind, gain=gain)
    conv, bn, linear = model[0], model[1], model[4]
    fan_in, fan_out = 40 * 9, 60 * 9
    expected = {"normal": gain, "xavier": gain * math.sqrt(2 / (fan_in + fan_out)),
                "kaiming": math.sqrt(2 / fan_in)}
    if kind in expected:
        assert conv.weight.std().item() == pytest.approx(expected[kind], rel=0.05)
    else:  # orthogonal rows of the flattened weight
        w = linear.weight
        torch.testing.assert_close(w @ w.T, torch.eye(200) * gain ** 2, atol=1e-4, rtol=0)
    for m in (conv, model[2], linear):
        assert torch.count_nonzero(m.bias) == 0
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.5 * gain)
    assert torch.count_nonzero(bn.bias) == 0


def test_init_leaves_equalized_lr_layers_alone():
    layer = EqualLinear(64, 32, lr_mul=0.01)
    before = layer.weight.clone()
    init_weights(nn.Sequential(layer))
    assert torch.equal(layer.weight, before)
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.1)  # N(0, 1) / lr_mul


def test_init_keeps_adains_style_scale_at_one():
    """AdaIN's style layer is an nn.Linear whose bias is the norm's affine: zeroing it, as a plain
    linear's, would scale every normalised plane by ~0 (a fresh AdaIN must be close to a plain norm)."""
    from effgan.nn import AdaIN

    torch.manual_seed(0)
    layer = AdaIN(8, w_dim=16, impl="ref")
    init_weights(nn.Sequential(layer))
    assert torch.equal(layer.style.bias[:8], torch.ones(8)) and torch.count_nonzero(layer.style.bias[8:]) == 0
    assert layer.style.weight.std().item() == pytest.approx(0.02, rel=0.2)  # the weight is initialised
    scale, shift = layer.styles(torch.randn(4, 16))
    assert (scale - 1).abs().max() < 0.5 and shift.abs().max() < 0.5


def test_init_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        init_weights(net(), kind="uniform")
    with pytest.raises(ValueError, match="gain"):
        init_weights(net(), gain=-1.0)


def test_count_flops_matches_hand_count():
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2, padding=1),           # 17x13 -> 9x7
        nn.Conv2d(6, 6, 5, padding=2, groups=3),           # grouped
        nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1),  # 9x7 -> 18x14
        nn.Flatten(), nn.Linear(4 * 18 * 14, 11))
    n = 2
    macs = (n * 6 * 9 * 7 * 3 * 9
            + n * 6 * 9 * 7 * 2 * 25
            + n * 6 * 9 * 7 * 4 * 16
            + n * 11 * 4 * 18 * 14)
    assert count_flops(model, (n, 3, 17, 13)) == 2 * macs
    assert count_flops(model, (n, 3, 17, 13), device="cpu") == 2 * macs


def test_count_flops_resnet_closed_form_and_model_untouched():
    ngf, side = 4, 32
    g = build("resnet6", ngf=ngf, fused=False)
    g2 = build("resnet9", ngf=ngf, fused=False)
    state = {k: v.clone() for k, v in g.state_dict().items()}
    # The blocks are the only difference: 3 blocks x 2 convs of (4 ngf)^2 * 9 at side/4.
    per_block = 2 * (4 * ngf) ** 2 * 9 * (side // 4) ** 2
    diff = count_flops(g2, (1, 3, side, side)) - count_flops(g, (1, 3, side, side))
    assert diff == 2 * 3 * per_block
    assert all(torch.equal(state[k], v) for k, v in g.state_dict().items())
    assert next(g.parameters()).device.type == "cpu"


def test_count_flops_rejects_bad_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        count_flops(nn.Linear(2, 2), (2, 0))


def test_the_docs_model_table_is_what_the_summary_computes():
    """docs/MODELS.md's parameter and FLOP table, regenerated (meta device: shapes only)."""
    import pathlib

    from effgan.models.summary import summarize

    docs = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "MODELS.md").read_text(encoding="utf-8")
    lines = docs.split("| model | input | parameters | GFLOPs |\n|---|---|---:|---:|\n", 1)[1].split("\n\n", 1)[0]
    documented = [line.strip("| ").split(" | ") for line in lines.splitlines()]
    computed = [[name, shown, f"{params:,}", f"{flops / 1e9:.2f}"] for name, shown, params, flops in summarize()]
    assert documented == computed


def test_summary_counts_every_registered_name(capsys):
    """`python -m effgan.models.summary NAME` takes any registered name (its help says so), not only
    the docs table's rows: generators of z, 28x28 DCGANs and conditional models included."""
    from effgan.models import list_models
    from effgan.models.summary import main

    main(list_models())
    rows = [line for line in capsys.readouterr().out.splitlines()[2:] if line.startswith("| ")]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == list_models()
    assert all(float(row.rstrip(" |").rsplit(" | ", 1)[1]) > 0 for row in rows)


def test_summary_unknown_name_is_a_clear_error(capsys):
    from effgan.models.summary import main

    with pytest.raises(SystemExit):
        main(["resnet10"])
    err = capsys.readouterr().err
    assert "resnet10" in err and "resnet9" in err


def test_summary_refuses_names_beside_scaling(capsys):
    from effgan.models.summary import main

    with pytest.raises(SystemExit) as stop:
        main(["--scaling", "resnet9"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--scaling" in err and "python -m effgan.models.summary" in err
