"""imgclf: an end-to-end image classification pipeline (scrape, clean, prepare, split, train,
evaluate, predict) behind one CLI."""

__version__ = "0.1.0"
