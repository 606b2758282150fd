"""Model registry tests, parametrized over `list_models()` (timm / keras applications_test style):
a model is tested the moment it is registered."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from imgclf.errors import ModelError  # noqa: E402
from imgclf.models import HEAD_LAYERS, create_model, get_spec, list_models  # noqa: E402

HEAVY = {"densenet201", "xception"}  # keras.applications backbones: ~20M parameters


def _params():
    out = []
    for spec in list_models():
        marks = [pytest.mark.slow] if spec.name in HEAVY else []
        out.append(pytest.param(spec.name, id=spec.name, marks=marks))
    return out


def _small(name: str) -> int:
    return max(get_spec(name).min_size, 16)


def test_registry_has_the_six_models_in_order():
    assert [s.name for s in list_models()] == ["mlp", "cnn", "vgg", "peetznet", "densenet201", "xception"]
    for s in list_models():
        assert s.default_size >= s.min_size and s.preprocessing and s.description
    assert [s.name for s in list_models() if s.pretrained] == ["densenet201", "xception"]


def test_unknown_model_suggests_close_match():
    with pytest.raises(ModelError, match="Did you mean 'xception'"):
        get_spec("xceptoin")


def test_cnn_depth_sets_the_number_of_stages():
    m = create_model("cnn", num_classes=10, input_shape=(28, 28, 3), width=4, depth=[1, 2, 1, 1, 1])
    # one stage per entry: filters double, resolution halves ("same" padding) 28 -> 14 -> 7 -> 4 -> 2
    assert m.get_layer("last_conv").output.shape[1:] == (2, 2, 64)
    assert m.get_layer("stage2_block2_out").output.shape[1:] == (14, 14, 8)
    assert m.output.shape[1:] == (10,)
    for bad in ([1] * 7, [], [1, 0, 1]):
        with pytest.raises(ModelError, match="depth must be 1 to 6"):
            create_model("cnn", num_classes=3, input_shape=(16, 16, 3), depth=bad)


def test_create_model_drops_none_overrides_and_rejects_unknown_ones():
    m = create_model("cnn", num_classes=3, input_shape=(16, 16, 3), width=None, dropout=None)
    assert m.get_layer("stem_conv").filters == 32  # builder default kept
    assert m.get_layer("head_dropout").rate == get_spec("cnn").defaults["dropout"]
    m = create_model("cnn", num_classes=3, input_shape=(16, 16, 3), width=8, dropout=0.5)
    assert m.get_layer("stem_conv").filters == 8 and m.get_layer("head_dropout").rate == 0.5
    with pytest.raises(ModelError, match=r"no option 'widht'.*'width'"):
        create_model("cnn", num_classes=3, input_shape=(16, 16, 3), widht=8)


def test_too_small_input_and_bad_arguments_are_model_errors():
    with pytest.raises(ModelError, match="at least 71x71"):
        create_model("xception", num_classes=2, input_shape=(32, 32, 3))
    with pytest.raises(ModelError, match="num_classes must be >= 2"):
        create_model("mlp", num_classes=1, input_shape=(16, 16, 3))
    with pytest.raises(ModelError, match="no ImageNet weights"):
        create_model("cnn", num_classes=2, input_shape=(16, 16, 3), weights="imagenet")
    with pytest.raises(ModelError, match="weights file not found"):
        create_model("cnn", num_classes=2, input_shape=(16, 16, 3), weights="/nonexistent/w.weights.h5")


@pytest.mark.parametrize("name", _params())
def test_model_builds_saves_loads_and_trains(name, tmp_path):
    size = _small(name)
    spec = get_spec(name)
    model = create_model(name, num_classes=3, input_shape=(size, size, 3))
    assert model.output_shape == (None, 3)
    assert model.input_shape == (None, size, size, 3)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    auto = re.compile(r"(conv2d|batch_normalization|add|activation|zero_padding2d|dense|dropout|concatenate)(_\d+)?")
    assert not [n for n in names if auto.fullmatch(n)], "every layer gets a stable name"
    assert set(names) >= HEAD_LAYERS
    assert len(model.get_layer("embedding").output.shape) == 2  # (batch, features)
    if spec.last_conv_layer is not None:
        assert len(model.get_layer(spec.last_conv_layer).output.shape) == 4  # Grad-CAM map

    # raw RGB in [0, 255] in, probabilities out (preprocessing inside the model)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4, size, size, 3)).astype("float32")
    y = np.array([0, 1, 2, 0])
    # eager calls: tracing a 700-layer DenseNet into a graph costs minutes, a call seconds
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), probs, rtol=1e-5, atol=1e-6)

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    loss = float(model.train_on_batch(x, y))
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.slow
def test_backbone_loads_a_local_weights_file(tmp_path):
    """`weights=PATH`: a file written here from a weights=None backbone is loaded layer by layer."""
    ref = keras.applications.Xception(include_top=False, weights=None, input_shape=(71, 71, 3))
    path = tmp_path / "xception_notop.weights.h5"
    ref.save_weights(path)
    model = create_model("xception", num_classes=2, input_shape=(71, 71, 3), weights=str(path))
    for layer_name in ("block1_conv1", "block14_sepconv2", "block14_sepconv2_bn"):
        for a, b in zip(model.get_layer(layer_name).get_weights(), ref.get_layer(layer_name).get_weights()):
            np.testing.assert_array_equal(a, b)
    fresh = create_model("xception", num_classes=2, input_shape=(71, 71, 3))
    assert not np.array_equal(
        fresh.get_layer("block1_conv1").get_weights()[0], ref.get_layer("block1_conv1").get_weights()[0]
    )

    bad = tmp_path / "notes.txt"
    bad.write_text("not weights")
    with pytest.raises(ModelError, match="must end in"):
        create_model("xception", num_classes=2, input_shape=(71, 71, 3), weights=str(bad))


@pytest.mark.slow
def test_imagenet_without_internet_says_how_to_pass_a_local_file(monkeypatch, tmp_path):
    """No network here: Keras' real download path fails and the error tells what to do."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached weights file
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # fail fast even with a network
    with pytest.raises(ModelError) as info:
        create_model("densenet201", num_classes=2, input_shape=(32, 32, 3), weights="imagenet")
    msg = str(info.value)
    assert "densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg and "--weights /path/to/" in msg


def test_fused_batch_norm_matches_keras_batch_norm():
    """`FusedBatchNormalization` (TensorFlow's fused kernel) computes what Keras' layer does:
    same outputs and gradients; the moving variance takes the unbiased batch variance."""
    import tensorflow as tf

    from imgclf.models.layers import FusedBatchNormalization

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (8, 5, 5, 4)).astype("float32"))
    ref = keras.layers.BatchNormalization(momentum=0.9)
    fused = FusedBatchNormalization(momentum=0.9)
    for layer in (ref, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.arange(1, 5, dtype="float32"))
        layer.beta.assign(np.full(4, 0.5, dtype="float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ref, y_fused = ref(x, training=True), fused(x, training=True)
        loss_ref, loss_fused = tf.reduce_sum(y_ref**2 * x), tf.reduce_sum(y_fused**2 * x)
    np.testing.assert_allclose(y_fused, y_ref, atol=1e-4)
    np.testing.assert_allclose(tape.gradient(loss_fused, x), tape.gradient(loss_ref, x), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(tape.gradient(loss_fused, fused.gamma), tape.gradient(loss_ref, ref.gamma), rtol=1e-4)
    n = 8 * 5 * 5  # values per channel
    batch_var = np.var(np.asarray(x), axis=(0, 1, 2))
    np.testing.assert_allclose(fused.moving_mean, ref.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, 0.9 + 0.1 * batch_var * n / (n - 1), rtol=1e-5)
    np.testing.assert_allclose(ref.moving_variance, 0.9 + 0.1 * batch_var, rtol=1e-5)
    # inference uses the moving statistics: equal layers give equal outputs
    fused.moving_variance.assign(ref.moving_variance)
    np.testing.assert_allclose(fused(x, training=False), ref(x, training=False), atol=1e-5)
    # a frozen layer runs in inference mode even with training=True (fine-tuning keeps BN frozen)
    fused.trainable = False
    before = np.array(fused.moving_mean)
    np.testing.assert_allclose(fused(x, training=True), ref(x, training=False), atol=1e-5)
    np.testing.assert_array_equal(fused.moving_mean, before)
    # 2-D inputs (the mlp) fall back to the Keras computation
    flat = tf.reshape(x, (8, -1))[:, :4]
    np.testing.assert_allclose(
        FusedBatchNormalization()(flat, training=False), keras.layers.BatchNormalization()(flat, training=False)
    )


def test_a_saved_cnn_loads_in_a_fresh_process_through_predict(tmp_path):
    """`.keras` files holding imgclf's own layers load where only `imgclf.runtime` is imported."""
    model = create_model("cnn", num_classes=3, input_shape=(16, 16, 3), width=4)
    x = np.random.default_rng(1).integers(0, 256, (2, 16, 16, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", np.asarray(model(x, training=False)))
    code = (
        "import numpy as np, sys; from imgclf.runtime import load_keras_model; "
        f"m = load_keras_model({str(tmp_path / 'm.keras')!r}); "
        f"got = np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}), training=False)); "
        f"np.testing.assert_allclose(got, np.load({str(tmp_path / 'want.npy')!r}), rtol=1e-5, atol=1e-6); print('ok')"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
