"""Layers of imgclf's own architectures that Keras does not provide in the form we need.

`FusedBatchNormalization` is registered with Keras' serialization under
`"imgclf>FusedBatchNormalization"`: a `.keras` file that contains it loads once this module is
imported (`imgclf.predict`, `imgclf.train` and `imgclf.explore.embed` do so before loading).
"""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="imgclf")
class FusedBatchNormalization(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused batch-norm kernel.

    Keras 3 computes batch normalization on TensorFlow as separate ops (`tf.nn.moments`,
    then `tf.nn.batch_normalization`, and the gradient of each); Keras 2 and `tf.keras` used one
    `FusedBatchNormV3` op (oneDNN on x86 CPUs) forward and one backward. This layer calls that
    op again: same weights (`gamma`, `beta`, `moving_mean`, `moving_variance`), same
    arguments and same output within float32 round-off, but fewer passes over memory.
    Measured by `scripts/bench/bench_train_throughput.py` (docs/benchmarks.md).

    One difference from the Keras layer: during training the moving variance is updated with
    the unbiased batch variance (`n / (n - 1)` times the biased one, `n` = batch × height ×
    width), as `tf.keras` and PyTorch do. Normalization itself uses the biased variance in
    both, per Ioffe & Szegedy (2015).

    Inputs that the fused kernel does not take — not 4-D `(batch, height, width, channels)`,
    `axis` other than the last, a mask, `renorm` or `synchronized` — and backends other than
    TensorFlow fall back to the Keras computation.

    Args:
        **kwargs: the arguments of `keras.layers.BatchNormalization` (`momentum`, `epsilon`,
            `center`, `scale`, ...).
    """

    def _fusable(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not self.renorm
            and not self.synchronized
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        mean = tf.cast(self.moving_mean, tf.float32)
        variance = tf.cast(self.moving_variance, tf.float32)
        if training and self.trainable:
            # exponential_avg_factor = 1 - momentum: the op returns the updated moving averages.
            y, new_mean, new_variance = tf.compat.v1.nn.fused_batch_norm(
                x,
                gamma,
                beta,
                mean=mean,
                variance=variance,
                epsilon=self.epsilon,
                is_training=True,
                exponential_avg_factor=1.0 - self.momentum,
            )
            self.moving_mean.assign(tf.cast(new_mean, self.moving_mean.dtype))
            self.moving_variance.assign(tf.cast(new_variance, self.moving_variance.dtype))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=mean, variance=variance, epsilon=self.epsilon, is_training=False
            )
        return tf.cast(y, self.compute_dtype)
