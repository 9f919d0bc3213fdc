"""The FID InceptionV3 structure with random weights: feature size, parameter layout, loading."""
import pytest
import torch

from effgan.metrics.extractors import build_extractor
from effgan.metrics.inception import FIDInceptionV3, load_fid_inception


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FIDInceptionV3().eval()


def test_features_are_2048_dimensional(model):
    # The network proper at its smallest valid input (cheap on a CPU); forward() below adds the 299 resize.
    with torch.no_grad():
        features = model.features_without_resize(torch.rand(3, 3, 75, 80) * 2 - 1)
    assert features.shape == (3, 2048)
    assert torch.isfinite(features).all()
    assert (features >= 0).all()  # averages of ReLU maps


def test_forward_resizes_to_299_and_accepts_grayscale(model):
    gray = torch.rand(1, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        features = model(gray)
        resized = torch.nn.functional.interpolate(gray.expand(-1, 3, -1, -1), size=(299, 299), mode="bilinear",
                                                  align_corners=False)
        torch.testing.assert_close(features, model.features_without_resize(resized))
    assert features.shape == (1, 2048)


def test_parameter_layout_matches_the_published_graph(model):
    # InceptionV3 without the auxiliary head has 23,834,568 parameters with 1000 classes;
    # the FID graph's 1008-way classifier adds 8 * (2048 + 1).
    assert sum(p.numel() for p in model.parameters()) == 23_834_568 + 8 * 2049
    state = model.state_dict()
    assert state["fc.weight"].shape == (1008, 2048)
    assert state["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state["Mixed_7c.branch3x3dbl_3b.bn.running_var"].shape == (384,)
    assert state["Mixed_6e.branch7x7_2.conv.weight"].shape == (192, 192, 1, 7)
    assert not any(key.startswith("AuxLogits") for key in state)


def test_weights_round_trip_through_a_file(model, tmp_path):
    path = tmp_path / "fid_weights.pth"
    # Files from older torch lack BatchNorm's num_batches_tracked; they must still load.
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    loaded = load_fid_inception(path)
    assert not loaded.training
    chosen = build_extractor(fid_weights=path)  # the weights file wins over training a FeatureNet
    assert isinstance(chosen, FIDInceptionV3) and chosen.name == "inception_v3_fid"
    x = torch.rand(2, 3, 75, 75) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.features_without_resize(x), model.features_without_resize(x),
                                   rtol=0, atol=0)


def test_mismatched_or_missing_files_raise(model, tmp_path):
    with pytest.raises(ValueError, match="never downloads"):
        load_fid_inception(tmp_path / "absent.pth")
    state = dict(model.state_dict())
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match="fc.bias"):
        load_fid_inception(path)


def test_rejects_wrong_channel_count(model):
    with pytest.raises(ValueError, match="images"):
        model(torch.zeros(1, 2, 32, 32))
    with pytest.raises(ValueError, match="75"):
        model.features_without_resize(torch.zeros(1, 3, 32, 32))
