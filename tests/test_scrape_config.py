"""configs/cars_vs_tanks.yaml: the real-world scrape config validates and means what it says."""

from __future__ import annotations

from pathlib import Path

from imgclf.config import RedditSource, load_run_config

CONFIG = Path(__file__).parents[1] / "configs" / "cars_vs_tanks.yaml"


def test_cars_vs_tanks_config_loads():
    cfg = load_run_config(CONFIG)
    assert [(r.subreddits, r.label) for r in cfg.source.reddit] == [(["carporn"], "car"), (["tankporn"], "tank")]
    assert all(
        isinstance(r, RedditSource) and r.sort == ["top"] and r.time_filter == ["all"] and not r.nsfw
        for r in cfg.source.reddit
    )
    assert cfg.prepare.size == 224 and cfg.train.model == "xception" and cfg.train.weights == "imagenet"
    assert sum(cfg.split.ratios) == 1.0 and "scrape" in cfg.stages
    assert cfg.stage_dir("raw") == Path("data/cars_vs_tanks/raw")
