"""The training loop of `--strategy multiworker`: a custom loop driven by `strategy.run`.

Keras 3's `model.fit` cannot train under `tf.distribute.MultiWorkerMirroredStrategy` on the
TensorFlow backend (keras-team/keras#20585), so multi-worker training runs this loop instead,
with Keras' own pieces: the model, its optimizer (which all-reduces the gradients across the
workers in `apply_gradients`), Keras losses, and the very `keras.callbacks.CallbackList` the
`model.fit` path uses (`imgclf.train`), called in the order `fit` calls it:

    on_train_begin -> [on_epoch_begin -> (on_train_batch_begin, on_train_batch_end)*
                       -> on_test_begin -> on_test_end -> on_epoch_end]* -> on_train_end

One step on each replica: forward pass, per-example cross-entropy times the example's class
weight, averaged over the GLOBAL batch (`tf.nn.compute_average_loss(global_batch_size=...)`),
gradients, `optimizer.apply_gradients` (all-reduce, then the same update on every worker).
Every batch is full (the training pipeline repeats and drops remainders), so every step
averages exactly `global_batch_size` examples and an epoch is `ceil(n_train /
global_batch_size)` steps on every worker; the learning-rate schedule counts these global steps
(`optimizer.iterations`).

At the end of each epoch the batch-norm moving statistics (each worker's follow its own
shard) are averaged over the workers, so every worker holds the same model; the training
sums (weighted loss, weighted correct, weights, examples) and the validation sums (each
worker scores its shard of `val/` with a plain forward pass) are summed over the workers, so
every worker gets the same `loss`, `accuracy`, `val_loss`, `val_accuracy` and its callbacks
take the same decisions (early stopping, ReduceLROnPlateau); whether to stop is the chief's
decision, broadcast. The logs are those of `model.fit`: `loss` is `sum(w_i * l_i) / n` and
`accuracy` is weighted by the class weights (Keras passes them to the metrics as sample
weights); `val_loss` and `val_accuracy` are unweighted means over `val/`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imgclf.cluster import Collectives

if TYPE_CHECKING:
    import keras


@dataclass
class LoopPlan:
    """One phase of the custom loop.

    Attributes:
        initial_epoch: int. Epochs already behind this phase (0-based index of the first one).
        end_epoch: int. Epoch count when the phase ends.
        steps: int. Global steps per epoch (`ceil(n_train / global_batch_size)`).
        steps_per_execution: int. Steps run by one call of the compiled function.
        global_batch_size: int. Examples per step over all replicas.
        class_weight: dict int -> float, or None. Weight of each class in the loss.
        label_smoothing: float. > 0: labels are one-hot (categorical cross-entropy).
        jit: bool. XLA-compile the forward and backward pass of a step.
    """

    initial_epoch: int
    end_epoch: int
    steps: int
    steps_per_execution: int
    global_batch_size: int
    class_weight: dict[int, float] | None
    label_smoothing: float
    jit: bool = False


def per_example_loss(label_smoothing: float) -> keras.losses.Loss:
    """The cross-entropy of `imgclf.train` per example (`reduction=None`).

    Args:
        label_smoothing: float in `[0, 1)`. 0: sparse categorical cross-entropy on class
            indices; > 0: categorical cross-entropy with that smoothing on one-hot labels.

    Returns:
        keras.losses.Loss mapping `(y_true, probabilities (batch, classes))` to `(batch,)`.
    """
    import keras

    if label_smoothing > 0:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)
    return keras.losses.SparseCategoricalCrossentropy(reduction=None)


def _class_indices(y: Any, sparse: bool) -> Any:
    import tensorflow as tf

    return tf.cast(y, tf.int64) if sparse else tf.argmax(y, axis=-1)


def make_train_function(model: keras.Model, strategy: Any, plan: LoopPlan) -> Callable[[Any, Any], Any]:
    """The compiled function that runs up to `steps_per_execution` training steps.

    Args:
        model: keras.Model, compiled (its `optimizer` is used), built under `strategy.scope()`.
        strategy: tf.distribute.Strategy.
        plan: LoopPlan.

    Returns:
        A `tf.function` `(distributed_iterator, n) -> float64 tensor (4,)`: this worker's sums,
        over the `n` steps, of `w_i * l_i`, `w_i * correct_i`, `w_i` and the number of
        examples (`w_i` the class weight of example i, 1 without class weights).
    """
    import tensorflow as tf

    loss_fn = per_example_loss(plan.label_smoothing)
    sparse = plan.label_smoothing <= 0
    optimizer = model.optimizer
    k = int(model.output_shape[-1])
    table = tf.constant([(plan.class_weight or {}).get(i, 1.0) for i in range(k)], tf.float32)

    def forward_backward(x, y):
        labels = _class_indices(y, sparse)
        w = tf.gather(table, labels)
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            weighted = loss_fn(y, probs) * w
            loss = tf.nn.compute_average_loss(weighted, global_batch_size=plan.global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        correct = tf.cast(tf.equal(tf.argmax(probs, axis=-1), labels), tf.float32)
        n = tf.cast(tf.shape(labels)[0], tf.float32)
        stats = tf.stack([tf.reduce_sum(weighted), tf.reduce_sum(w * correct), tf.reduce_sum(w), n])
        return grads, stats

    if plan.jit:
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def replica_step(batch):
        grads, stats = forward_backward(*batch)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return tf.cast(stats, tf.float64)

    @tf.function
    def train_function(iterator, n):
        total = tf.zeros(4, tf.float64)
        for _ in tf.range(n):
            out = strategy.run(replica_step, args=(next(iterator),))
            total += tf.add_n(strategy.experimental_local_results(out))
        return total

    return train_function


def make_eval_function(model: keras.Model, label_smoothing: float) -> Callable[[Any], Any]:
    """The compiled function that scores a (local, finite) validation dataset.

    Args:
        model: keras.Model.
        label_smoothing: float. As in `per_example_loss`.

    Returns:
        A `tf.function` `dataset -> float64 tensor (3,)`: the sums of the loss, of the correct
        predictions and the number of examples, with the model in inference mode.
    """
    import tensorflow as tf

    loss_fn = per_example_loss(label_smoothing)
    sparse = label_smoothing <= 0

    def add(total, batch):
        x, y = batch
        probs = model(x, training=False)
        per = loss_fn(y, probs)
        if model.losses:
            per += tf.add_n(model.losses)
        correct = tf.cast(tf.equal(tf.argmax(probs, axis=-1), _class_indices(y, sparse)), tf.float32)
        n = tf.cast(tf.shape(per)[0], tf.float32)
        return total + tf.cast(tf.stack([tf.reduce_sum(per), tf.reduce_sum(correct), n]), tf.float64)

    @tf.function
    def evaluate(dataset):
        return dataset.reduce(tf.zeros(3, tf.float64), add)

    return evaluate


def _moving_statistics(model: keras.Model) -> list[Any]:
    """The batch-norm moving means and variances (each worker updates them from its own shard)."""
    return [v for v in model.non_trainable_variables if v.path.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance")]


def _train_epoch(
    callbacks: Any, train_function: Any, iterator: Any, plan: LoopPlan, collectives: Collectives
) -> dict[str, float]:
    """Runs the steps of one epoch; returns its `loss` and `accuracy`, summed over the workers."""
    import tensorflow as tf

    total = np.zeros(4)
    step = 0
    while step < plan.steps:
        n = min(plan.steps_per_execution, plan.steps - step)
        callbacks.on_train_batch_begin(step)
        total += np.asarray(train_function(iterator, tf.constant(n)))
        step += n
        callbacks.on_train_batch_end(step - 1, {"loss": total[0] / max(total[3], 1.0)})
    loss_sum, correct, weights, count = collectives.sum(total)
    return {"loss": float(loss_sum / max(count, 1.0)), "accuracy": float(correct / max(weights, 1e-12))}


def _validate(callbacks: Any, evaluate: Any, val_dataset: Any, collectives: Collectives) -> dict[str, float]:
    """Scores `val/` (each worker its shard), summed over the workers; returns the `val_` logs."""
    callbacks.on_test_begin()
    loss_sum, correct, count = collectives.sum(np.asarray(evaluate(val_dataset)))
    logs = {"loss": float(loss_sum / max(count, 1.0)), "accuracy": float(correct / max(count, 1.0))}
    callbacks.on_test_end(logs)
    return {f"val_{k}": v for k, v in logs.items()}


def run_loop(
    model: keras.Model,
    strategy: Any,
    callbacks: keras.callbacks.CallbackList,
    iterator: Any,
    val_dataset: Any,
    plan: LoopPlan,
    collectives: Collectives,
) -> dict[str, float]:
    """Trains `model` for the epochs of `plan`, calling `callbacks` as `model.fit` does.

    Before the first epoch, after `on_train_begin` (where `keras.callbacks.BackupAndRestore`
    restores a backup, on the chief), the chief's weights, optimizer state and first epoch are
    broadcast, so every worker resumes from the chief's backup.

    Args:
        model: keras.Model. Built and compiled under `strategy.scope()`.
        strategy: tf.distribute.Strategy.
        callbacks: keras.callbacks.CallbackList, with `model` and `params` set.
        iterator: iterator over `strategy.distribute_datasets_from_function(...)`: full
            batches of the training shard, repeated forever.
        val_dataset: tf.data.Dataset. This worker's shard of `val/`, finite.
        plan: LoopPlan.
        collectives: Collectives of the cluster.

    Returns:
        dict: the logs of the last epoch run (empty if none).
    """
    optimizer = model.optimizer
    with strategy.scope():
        optimizer.build(model.trainable_variables)
    train_function = make_train_function(model, strategy, plan)
    evaluate = make_eval_function(model, plan.label_smoothing)
    moving = _moving_statistics(model)

    model.stop_training = False
    model._initial_epoch = None  # set by BackupAndRestore.on_train_begin, as `fit` reads it
    callbacks.on_train_begin()
    first = int(collectives.broadcast([model._initial_epoch or plan.initial_epoch])[0])
    collectives.broadcast_variables([*model.variables, *optimizer.variables])
    logs: dict[str, float] = {}
    for epoch in range(first, plan.end_epoch):
        callbacks.on_epoch_begin(epoch)
        logs = _train_epoch(callbacks, train_function, iterator, plan, collectives)
        collectives.average_variables(moving)
        logs.update(_validate(callbacks, evaluate, val_dataset, collectives))
        callbacks.on_epoch_end(epoch, logs)
        if collectives.broadcast([float(bool(model.stop_training))])[0]:
            break
    if plan.end_epoch > 0:
        optimizer.finalize_variable_values(model.trainable_weights)  # as `fit` does (EMA)
    callbacks.on_train_end(logs)
    return logs
