"""Config loading: YAML + overrides, unknown keys with suggestions, CLI values never None-override."""

from pathlib import Path

import pytest

from imgclf.config import (
    PrepareConfig,
    RunConfig,
    SplitConfig,
    load_run_config,
    parse_override,
    stage_config,
)
from imgclf.errors import ConfigError

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path):
    cfg = load_run_config(path)
    assert isinstance(cfg, RunConfig)


def test_default_yaml_lists_every_key():
    """configs/default.yaml documents every key of every section (nothing left implicit)."""
    import yaml

    data = yaml.safe_load((Path(__file__).parents[1] / "configs" / "default.yaml").read_text())

    def missing(model, d, prefix=""):
        out = []
        for name, field in model.model_fields.items():
            if name not in d:
                out.append(prefix + name)
                continue
            sub = field.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields") and isinstance(d[name], dict):
                out += missing(sub, d[name], prefix + name + ".")
        return out

    assert missing(RunConfig, data) == []


def test_unknown_key_suggests_nearest(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("source: {dataset: {name: digits}}\ntrain: {epoch: 3}\n")
    with pytest.raises(ConfigError) as exc:
        load_run_config(f)
    assert "train.epoch" in str(exc.value) and "'epochs'" in str(exc.value)


def test_nested_unknown_key_in_augment(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("source: {dataset: {name: digits}}\ntrain: {augment: {rotaton: 0.1}}\n")
    with pytest.raises(ConfigError, match="rotation"):
        load_run_config(f)


def test_invalid_value_names_key_and_value(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("source: {dataset: {name: digits}}\nsplit: {ratios: [0.5, 0.2, 0.2]}\n")
    with pytest.raises(ConfigError, match=r"split\.ratios"):
        load_run_config(f)


def test_missing_source_is_an_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: x\n")
    with pytest.raises(ConfigError, match="source"):
        load_run_config(f)


def test_yaml_syntax_error_names_line(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: x\ntrain: {epochs: 3\n")
    with pytest.raises(ConfigError, match="line"):
        load_run_config(f)


def test_overrides_apply_in_order_and_parse_types(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("source: {dataset: {name: digits}}\ntrain: {epochs: 9, model: vgg}\n")
    cfg = load_run_config(f, [parse_override("train.epochs=3"), parse_override("split.ratios=[0.8, 0.1, 0.1]")])
    assert cfg.train.epochs == 3 and cfg.train.model == "vgg"
    assert cfg.split.ratios == (0.8, 0.1, 0.1)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.epochs")


def test_top_level_seed_feeds_stages_unless_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: 7\nsource: {dataset: {name: digits}}\nsplit: {seed: 3}\n")
    cfg = load_run_config(f)
    assert cfg.train.seed == 7 and cfg.split.seed == 3


def test_cli_none_does_not_override_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("prepare: {size: 64, format: jpeg}\n")
    cfg = stage_config(PrepareConfig, "prepare", f, size=None, format=None, quality=80)
    assert (cfg.size, cfg.format, cfg.quality) == (64, "jpeg", 80)
    cfg = stage_config(PrepareConfig, "prepare", f, size=32)
    assert cfg.size == 32


def test_split_ratios_validated():
    with pytest.raises(Exception):
        SplitConfig(ratios=(0.7, 0.7, -0.4))
