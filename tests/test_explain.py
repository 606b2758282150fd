"""`imgclf explain`: Grad-CAM overlay PNG, same size as the input image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers_runs import SIZE, colour_image, make_run
from imgclf.cli.main import app
from imgclf.errors import ModelError
from imgclf.explain import explain_image, find_target_layer, grad_cam


@pytest.fixture()
def run(tmp_path):
    return make_run(tmp_path)


def test_gradcam_overlay_has_input_size_non_square(run, tmp_path):
    img = np.zeros((37, 90, 3), np.uint8)
    img[:] = colour_image("red", np.random.default_rng(1), size=90)[:37]
    src = tmp_path / "wide.png"
    Image.fromarray(img).save(src)
    result, dest = explain_image(src, run, out=tmp_path / "cam.png")
    with Image.open(dest) as out:
        assert out.size == (90, 37) and out.mode == "RGB"
        arr = np.asarray(out)
    assert result.label == "red" and result.layer == "last_conv"
    assert result.heatmap.shape == (SIZE // 2, SIZE // 2)  # last_conv is after one 2x pooling
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    # margins outside the center square the model saw stay as they were
    assert np.array_equal(arr[:, :26], img[:, :26])
    assert not np.array_equal(arr[:, 26:63], img[:, 26:63])


def test_gradcam_heatmap_follows_the_evidence(run):
    import keras

    model = keras.saving.load_model(run / "best.keras", safe_mode=True)
    # left half blue, right half grey: the blue evidence is on the left
    img = np.full((SIZE, SIZE, 3), 128, np.uint8)
    img[:, : SIZE // 2] = colour_image("blue", np.random.default_rng(2))[:, : SIZE // 2]
    cam, probs, layer = grad_cam(model, img, class_index=0)
    assert layer == "last_conv" and probs.shape == (3,)
    half = cam.shape[1] // 2
    assert cam[:, :half].sum() > cam[:, half:].sum()
    # the model's softmax is restored after the logit trick
    assert model.layers[-1].activation is keras.activations.get("softmax")


def test_cli_explain_default_output_and_errors(run, tmp_path):
    src = tmp_path / "g.png"
    Image.fromarray(colour_image("green", np.random.default_rng(4), size=24)).save(src)
    res = CliRunner().invoke(app, ["explain", str(src), "--model", str(run)])
    assert res.exit_code == 0, res.output
    dest = tmp_path / "g_gradcam.png"
    assert Image.open(dest).size == (24, 24)
    assert "green" in res.stderr
    res = CliRunner().invoke(app, ["explain", str(src), "--model", str(run), "--class", "gren"])
    assert res.exit_code == 1 and "green" in res.output
    res = CliRunner().invoke(app, ["explain", str(src), "--model", str(run), "--layer", "nope"])
    assert res.exit_code == 1 and "no layer 'nope'" in res.output


def test_model_without_convolution_is_refused():
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    with pytest.raises(ModelError, match="no convolutional layer"):
        find_target_layer(model)


def _registry_conv_models():
    from imgclf.models.registry import list_models

    return [s.name for s in list_models() if not s.pretrained]


@pytest.mark.slow
@pytest.mark.parametrize("name", _registry_conv_models())
def test_gradcam_on_every_registry_model(name, tmp_path):
    """Driven by the model list: conv nets get an overlay of the input size; the MLP is refused."""
    from imgclf.models.registry import create_model, get_spec
    from imgclf.records.run import RunInfo, save_run_info

    spec = get_spec(name)
    size = max(32, spec.min_size)
    model = create_model(name, num_classes=3, input_shape=(size, size, 3))
    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "best.keras")
    save_run_info(run, RunInfo(model=name, class_names=["a", "b", "c"], image_size=size))
    src = tmp_path / "img.png"
    Image.fromarray(colour_image("red", np.random.default_rng(0), size=50)[:, :41]).save(src)
    if spec.last_conv_layer is None:
        with pytest.raises(ModelError, match="no convolutional layer"):
            explain_image(src, run)
        return
    result, dest = explain_image(src, run, out=tmp_path / "cam.png")
    assert result.layer == spec.last_conv_layer
    assert Image.open(dest).size == (41, 50)
