"""The Keras callback that logs every epoch to the run's tracker (`imgclf.track.Tracker`).

`imgclf.train` adds it to each phase's callbacks when tracking is on. It only reads the epoch's
logs, so it works the same under `model.fit` and under a custom loop that drives the same
`keras.callbacks.CallbackList`. Keras is imported when the class is first made, not when this
module is imported.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from imgclf.track import Tracker, epoch_metrics

if TYPE_CHECKING:
    import keras


@functools.cache
def _tracking_callback_class() -> type:
    """The `TrackingCallback` class (made on first use: importing this module imports no Keras)."""
    import keras

    class TrackingCallback(keras.callbacks.Callback):
        """Logs each epoch's logs (`loss`, `accuracy`, `val_loss`, `val_accuracy`,
        `learning_rate`...) to a `Tracker`, with the epoch (0-based, as `history.csv`) as step."""

        def __init__(self, tracker: Tracker):
            super().__init__()
            self.tracker = tracker

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.tracker.log_metrics(epoch_metrics(logs), step=epoch)

    return TrackingCallback


def tracking_callback(tracker: Tracker) -> keras.callbacks.Callback:
    """A Keras callback logging every epoch's metrics to `tracker`, step = epoch.

    Put it after the callbacks that add to the logs (imgclf's `LearningRateLogger`) so the
    tracker sees what `history.csv` gets. A tracker that fails is switched off by `Tracker`
    itself: the callback never raises.

    Args:
        tracker: Tracker. The run's tracker (`imgclf.track.start_training`).

    Returns:
        keras.callbacks.Callback.
    """
    callback: keras.callbacks.Callback = _tracking_callback_class()(tracker)
    return callback
