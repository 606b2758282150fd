"""Typed configuration of every stage, loaded from YAML plus CLI overrides and validated once.

Each stage has a pydantic model; `RunConfig` nests them for `imgclf run CONFIG`. Unknown keys
are rejected with the nearest valid key suggested. CLI options left unset (None) never
override a value from the file (the timm `_factory.py` rule). `configs/default.yaml` shows
every key with a comment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from imgclf.errors import ConfigError, suggest


class StrictModel(BaseModel):
    """Base of all config models: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, defer_build=True
    )  # schema built on first use: fast --help


# ---------------------------------------------------------------------------------- sources
class DatasetSource(StrictModel):
    """A dataset imgclf can write as PNG folders without internet (`imgclf datasets`)."""

    name: Literal["digits", "fashion-mnist"] = "digits"
    official_split: bool = False  # fashion-mnist: keep the published test set as test/
    limit_per_class: int | None = Field(default=None, ge=1)  # cap per class (quick runs)


#: Reddit listing orders and time windows (`RedditSource.sort`, `RedditSource.time_filter`).
RedditSort = Literal["top", "hot", "new", "rising"]
RedditTime = Literal["hour", "day", "week", "month", "year", "all"]


class RedditSource(StrictModel):
    """Subreddits scraped into one label (`imgclf scrape reddit`).

    `sort` and `time_filter` take one value, a comma-separated string or a list. `sort: all`
    means every listing order (top, new, hot, rising) and, unless `time_filter` is given, `top`
    for each of all, year, month, week and day. Every listing of a subreddit is walked in turn
    and posts are deduplicated by id, which gets past Reddit's ~1,000 posts per listing
    (see `imgclf.scrape.reddit` and docs/scraping.md).
    """

    subreddits: list[str]
    label: str
    limit: int = Field(default=1000, ge=1)  # unique posts per subreddit, over all its listings
    sort: list[RedditSort] = Field(default_factory=lambda: list[RedditSort](["top"]), min_length=1)
    time_filter: list[RedditTime] = Field(
        default_factory=lambda: list[RedditTime](["all"]), min_length=1
    )  # for `top` and `search` listings
    search: list[str] = Field(
        default_factory=list, json_schema_extra={"default_text": "none"}
    )  # one listing per query and time filter
    new_only: bool = False  # walk `new` only, stopping at the first post an earlier run recorded
    nsfw: bool = False
    praw_site: str | None = Field(default=None, json_schema_extra={"default_text": "praw's DEFAULT section"})

    @field_validator("sort", "time_filter", mode="before")
    @classmethod
    def _comma_list(cls, value: Any, info: Any) -> Any:
        # "top,new" -> ["top", "new"]; sort "all" -> every listing order.
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            value = [v.strip() if isinstance(v, str) else v for v in value]
            value = [v for v in value if v != ""]
            if info.field_name == "sort" and "all" in value:
                value = list(dict.fromkeys([v for v in value if v != "all"] + ["top", "new", "hot", "rising"]))
        return value

    @field_validator("search", mode="before")
    @classmethod
    def _one_query(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _sort_all_time_filters(cls, data: Any) -> Any:
        # `sort: all` without a time filter walks `top` for each of five time filters.
        if isinstance(data, dict) and data.get("time_filter") is None:
            sort = data.get("sort")
            parts = sort.split(",") if isinstance(sort, str) else sort if isinstance(sort, (list, tuple)) else []
            if "all" in [p.strip() if isinstance(p, str) else p for p in parts]:
                data = {**data, "time_filter": ["all", "year", "month", "week", "day"]}
        return data


class WebSource(StrictModel):
    """Web pages / image URLs scraped into one label (`imgclf scrape web`)."""

    urls: list[str] = Field(default_factory=list)
    urls_file: Path | None = None
    label: str
    depth: int = Field(default=0, ge=0)  # link levels followed on the same site; 0 = the given pages only
    limit: int | None = Field(
        default=None, ge=1, json_schema_extra={"default_text": "no limit"}
    )  # image URLs attempted at most (earlier runs count)
    max_pages: int = Field(default=200, ge=1)  # pages fetched at most


class SourceConfig(StrictModel):
    """Where the raw images come from. Exactly one kind per run is typical; several may mix."""

    dataset: DatasetSource | None = None
    folder: Path | None = None  # an existing ImageFolder tree used as raw/
    reddit: list[RedditSource] = Field(default_factory=list)
    web: list[WebSource] = Field(default_factory=list)


# ----------------------------------------------------------------------------------- stages
class ScrapeConfig(StrictModel):
    """Shared downloader settings (`imgclf.net`), for Reddit and web scrapes.

    `retries` also sets prawcore's retries of Reddit API requests (see `imgclf.scrape.reddit`).
    """

    max_bytes: int = Field(default=20_000_000, ge=1024)  # bytes per download, hard cap
    workers: int = Field(default=8, ge=1, le=64)  # concurrent downloads
    connect_timeout: float = Field(default=10.0, gt=0)  # seconds
    read_timeout: float = Field(default=30.0, gt=0)  # seconds
    retries: int = Field(default=5, ge=0)  # extra tries after a timeout, connection error, 429 or 5xx
    backoff: float = Field(default=1.0, ge=0)  # seconds, base of the exponential backoff (with jitter)
    delay: float = Field(default=1.0, ge=0)  # seconds between requests to one host (web)
    url_budget: float = Field(default=120.0, gt=0)  # seconds one URL may take in all: every try, redirect and wait
    respect_noai: bool = True  # honour X-Robots-Tag / <meta name="robots"> noai and noimageai
    user_agent: str = "imgclf/0.1 (image-classification dataset builder)"  # web requests; praw's comes from praw.ini


class CleanConfig(StrictModel):
    """`imgclf clean`: verification, deduplication, quality (see docs/dedupe.md)."""

    min_size: int = Field(default=0, ge=0)  # pixels, smallest allowed width/height
    max_pixels: int = Field(default=89_478_485, ge=1)  # larger images are decompression bombs
    dedupe: bool = True
    radius: int = Field(default=8, ge=0, le=32)  # bits of each 64-bit phash: candidate radius (imgclf.clean.similarity)
    max_residual: float = Field(
        default=5.0, ge=0
    )  # grey levels [0, 255]: largest residual of a verified near duplicate
    flips: bool = False  # also find mirrored copies (reported as kind flip, grouped only when on)
    label_conflicts: Literal["keep", "reject"] = "keep"  # duplicates across classes
    reject_blurry: bool = False
    blur_threshold: float = Field(default=100.0, ge=0)  # variance of the Laplacian
    reject_uniform: bool = True  # near-uniform (blank) images carry no information
    uniform_std: float = Field(default=2.0, ge=0)  # grayscale std in [0, 255] below = uniform
    workers: int | None = Field(default=None, ge=1)


ResizePolicy = Literal["center_crop", "pad", "squish"]
Channel = Annotated[int, Field(ge=0, le=255)]
RGB = tuple[Channel, Channel, Channel]
Interpolation = Literal["auto", "lanczos", "bicubic", "bilinear", "nearest"]


class PrepareConfig(StrictModel):
    """`imgclf prepare`: every image to a square through the resize policy (`imgclf.inputs`)."""

    size: int = Field(default=224, ge=8, le=4096)  # pixels, square output side
    resize: ResizePolicy = "center_crop"  # center_crop | pad (letterbox) | squish
    interpolation: Interpolation = "auto"  # auto = Lanczos when shrinking, bicubic when enlarging
    pad_color: RGB = (0, 0, 0)  # RGB in [0, 255], fill of the pad policy
    format: Literal["png", "jpeg"] = "png"
    quality: int = Field(default=95, ge=1, le=100)  # JPEG quality
    workers: int | None = Field(default=None, ge=1)


class SplitConfig(StrictModel):
    """`imgclf split`: stratified train/val/test."""

    ratios: tuple[float, float, float] = (0.70, 0.15, 0.15)
    seed: int = 42
    keep_test: bool = False  # if the input already has train/ and test/, keep its test/
    check_leaks: bool = True  # fail if a near-duplicate pair or a provenance group crosses splits
    link: Literal["copy", "hardlink"] = "hardlink"
    radius: int = Field(default=8, ge=0, le=32)  # duplicate groups: the verified detector, as clean
    max_residual: float = Field(default=5.0, ge=0)  # grey levels [0, 255]
    flips: bool = False  # mirrored copies join duplicate groups
    provenance: bool = True  # keep each scrape provenance group (post, gallery, crosspost, URL) in one split

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be 3 non-negative numbers summing to 1, got {list(v)}")
        return v


class AugmentConfig(StrictModel):
    """Keras preprocessing layers applied to training batches only."""

    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"
    rotation: float = Field(default=0.0, ge=0, le=0.5)  # fraction of a full turn
    zoom: float = Field(default=0.0, ge=0, lt=1)  # fraction of height
    translation: float = Field(default=0.0, ge=0, lt=1)  # fraction of height / width
    contrast: float = Field(default=0.0, ge=0, lt=1)
    brightness: float = Field(default=0.0, ge=0, lt=1)
    shear: float = Field(default=0.0, ge=0, lt=1)  # fraction, as keras.layers.RandomShear
    erasing: float = Field(default=0.0, ge=0, le=1)  # probability per image of random erasing (Zhong et al. 2020)
    fill_mode: Literal["reflect", "constant", "nearest", "wrap"] = "reflect"  # geometric layers


class ModelEntry(StrictModel):
    """One model of `train.models` (several models in one `imgclf run`).

    Written as a registry name (`cnn`) or a mapping with the model, an optional name and any
    `train` keys for this model only: `{model: cnn, name: cnn-wide, model_options: {width: 32},
    epochs: 30}` (the keys other than `model` and `name` are gathered into `overrides`).
    """

    model: str  # registry name (`imgclf models`)
    name: str | None = None  # label of its runs and in the leaderboard; None = the model name
    overrides: dict[str, Any] = Field(default_factory=dict)  # train keys for this model only

    @model_validator(mode="before")
    @classmethod
    def _short_forms(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"model": data}
        if isinstance(data, dict):
            own = {k: v for k, v in data.items() if k in ("model", "name", "overrides")}
            rest = {k: v for k, v in data.items() if k not in own}
            if rest:
                own["overrides"] = {**(own.get("overrides") or {}), **rest}
            return own
        return data

    @field_validator("name")
    @classmethod
    def _folder_safe(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or "/" in v or "\\" in v or v.startswith((".", "_"))):
            raise ValueError(f"name must be a folder-safe word (no '/', not starting with '.' or '_'), got {v!r}")
        return v

    @property
    def label(self) -> str:
        """`name`, else the registry name."""
        return self.name or self.model


class TrainConfig(StrictModel):
    """`imgclf train`."""

    model: str = "cnn"
    weights: str = "none"  # none | imagenet | PATH to a weights file
    image_size: int | None = Field(
        default=None, ge=8, json_schema_extra={"default_text": "the data's size"}
    )  # pixels; None = the data's size
    resize: ResizePolicy | None = Field(
        default=None, json_schema_extra={"default_text": "prepare's policy, else center_crop"}
    )  # how files of another size become input; None = the policy `prepare` recorded, else center_crop
    interpolation: Interpolation | None = Field(
        default=None, json_schema_extra={"default_text": "prepare's, else auto"}
    )  # None = the interpolation `prepare` recorded, else auto
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = Field(default=1e-4, ge=0)  # adamw and sgd (decoupled: w -= lr * wd * w per step); adam: none
    schedule: Literal["plateau", "cosine"] = (
        "plateau"  # plateau: ReduceLROnPlateau; cosine: warmup + cosine decay per step
    )
    warmup_epochs: int = Field(default=1, ge=0)  # cosine: linear warmup from learning_rate / 10
    dropout: float | None = Field(default=None, ge=0, lt=1)  # None = the model's own default
    model_options: dict[str, Any] = Field(default_factory=dict)  # builder options, e.g. {width: 48, depth: [2, 2, 2]}
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    ema_momentum: float | None = Field(
        default=None, gt=0, lt=1, json_schema_extra={"default_text": "off"}
    )  # Polyak averaging: validate, checkpoint and save the weights' exponential moving average (e.g. 0.999)
    class_weights: bool = True
    imbalance_warn_ratio: float = Field(default=3.0, ge=1)
    early_stopping_patience: int = Field(default=5, ge=1)
    lr_patience: int = Field(default=2, ge=1)
    lr_factor: float = Field(default=0.5, gt=0, lt=1)
    min_lr: float = Field(default=1e-6, ge=0)
    fine_tune_layers: int | Literal["all"] = 30  # pretrained: top layers unfrozen in phase 2
    fine_tune_epochs: int = Field(default=0, ge=0)  # 0 = same as head epochs
    fine_tune_learning_rate: float = Field(default=1e-5, gt=0)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    cache: bool | None = None  # None = cache in memory when the data fits
    steps_per_execution: int = Field(default=1, ge=1)  # batches per compiled call (less overhead on CPU)
    seed: int = 42
    deterministic: bool = False
    mixed_precision: bool = False
    jit: bool = False
    strategy: Literal["default", "mirrored", "multiworker"] = "default"
    worker_timeout: int = Field(default=30, ge=1)  # multiworker: seconds without heartbeat before a worker is lost
    worker_start_timeout: int = Field(default=300, ge=1)  # multiworker: seconds the workers wait for each other
    run_name: str | None = None  # folder name under models_dir; None = <model>-<timestamp>
    models: list[ModelEntry] = Field(
        default_factory=list, json_schema_extra={"default_text": "none: train.model alone"}
    )  # `imgclf run` only: several models on the same split, each its own run, then compared
    repeats: int = Field(default=1, ge=1)  # `imgclf run` only: seeds per model (seed, seed + 1, ...), split fixed

    @model_validator(mode="after")
    def _check_models(self) -> TrainConfig:
        labels = [e.label for e in self.models]
        twice = sorted({x for x in labels if labels.count(x) > 1})
        if twice:
            raise ValueError(f"models: {twice} named more than once; give each a distinct `name`")
        self.model_configs()  # every entry's merged configuration must be valid
        return self

    def model_configs(self) -> list[tuple[str, TrainConfig]]:
        """The configuration of every model `imgclf run` trains, with its label.

        Without `models`: `[(model, self)]`. With `models`: one `(label, config)` per entry,
        the config being this section with the entry's `model` and `overrides` on top.
        `model_options` (builder options) are inherited only by entries of the same model as
        `train.model` (another architecture's builder does not take them). The returned
        configs have no `models` and `repeats` 1.

        Returns:
            list of (str, TrainConfig).

        Raises:
            ValueError: an entry whose merged configuration is invalid (naming the entry, key
                and value).
        """
        if not self.models:
            return [(self.model, self)]
        base = self.model_dump(exclude={"models", "repeats"})
        out = []
        for i, entry in enumerate(self.models):
            nested = sorted({"models", "repeats"} & set(entry.overrides))
            if nested:
                raise ValueError(
                    f"models[{i}] ({entry.label}): {', '.join(nested)} can only be set for the whole train section"
                )
            values = dict(base)
            if entry.model != self.model:
                values["model_options"] = {}
            values = deep_merge(values, {**entry.overrides, "model": entry.model})
            try:
                out.append((entry.label, TrainConfig.model_validate(values)))
            except ValidationError as exc:
                raise ValueError(format_validation_error(exc, TrainConfig, f"models[{i}] ({entry.label})")) from None
        return out


class EvaluateConfig(StrictModel):
    """`imgclf evaluate`."""

    split: Literal["train", "val", "test"] = "test"
    top_k: int = Field(default=3, ge=1)
    batch_size: int = Field(default=64, ge=1)
    tta: Literal["none", "flip"] = "none"  # test-time augmentation: average with the mirror image
    bootstrap_resamples: int = Field(
        default=2000, ge=1
    )  # percentile-bootstrap resamples of the confidence intervals (imgclf.stats)
    ci_level: float = Field(default=0.95, gt=0, lt=1)  # confidence level of the intervals
    bootstrap_seed: int = 0  # seed of the bootstrap resampling (same seed, same intervals)
    leak_audit: bool = True  # count evaluated images with a verified near copy in train / val (imgclf.leaks)


class CompareConfig(StrictModel):
    """`imgclf compare` (in `run`: the comparison written after training several models)."""

    split: Literal["train", "val", "test"] = "test"  # whose metrics / predictions files are compared
    bootstrap_resamples: int = Field(default=2000, ge=1)  # percentile-bootstrap resamples (imgclf.stats)
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    bootstrap_seed: int = 0
    alpha: float = Field(default=0.05, gt=0, lt=1)  # significance level of the McNemar test against the best
    force: bool = False  # rank runs evaluated on different test splits anyway (with a warning)


class PredictConfig(StrictModel):
    """`imgclf predict` (in `run`: images predicted after training)."""

    images: list[str] = Field(default_factory=list)  # paths, folders or URLs
    top_k: int = Field(default=3, ge=1)
    threshold: float = Field(default=0.5, ge=0, le=1)  # flag predictions below this probability
    batch_size: int = Field(default=64, ge=1)
    tta: Literal["none", "flip"] = "none"  # test-time augmentation: average with the mirror image


class AuditConfig(StrictModel):
    """How `imgclf audit` finds wrong labels and outliers.

    Attributes:
        model: str, default `"raw"`. What makes the embeddings of the default (linear probe)
            method: `raw` (pixels), `autoencoder[:RUN_DIR]`, a training run folder, a `.keras`
            file, or a registry name (see `imgclf.explore.embed.resolve_encoder`). With
            `cv_train`: a run folder (its model and training config are retrained per fold) or
            a registry name (trained with the audit's recipe); `raw` = the audit's recipe
            (`imgclf.audit.cvtrain.DEFAULT_RECIPE`).
        weights: str or None, default None. Registry names only: `none`, `imagenet` or a
            weights file.
        size: int or None, default None. Input side in pixels; None = the model's own (a run's
            input spec; for `raw`, the first image's shorter side clipped to [8, 64]; for the
            cv-train recipe, the first image's side).
        batch_size: int, default 64. Images per batch when embedding.
        folds: int, default 5. Cross-validation folds (K), >= 2.
        seed: int, default 42. Folds, PCA, training.
        method: str, default `"low_self_confidence"`. Confident-learning rule
            (`imgclf.audit.confident.METHODS`; `low_self_confidence` = as many images as the
            confident joint counts under another class, those of lowest self-confidence; see
            `imgclf.audit.confident.DEFAULT_METHOD`).
        groups: bool, default True. Keep duplicate / provenance groups in one fold.
        classifier_c: float, default 0.01. Inverse L2 strength of the logistic regression.
        pca: int or None, default 256. Embeddings longer than this are reduced to this many
            whitened PCA components before the logistic regression (None = never).
        cv_train: bool, default False. Train the real model once per fold instead of the
            linear probe.
        cv_epochs: int or None, default None. Epochs per fold with `cv_train`; None = the
            config's own (the run's, `train_config`'s, or the recipe's 3, more for small folders:
            `imgclf.audit.cvtrain.fit_recipe_to_data`).
        train_config: str or None, default None. A run YAML whose `train:` section is the model
            `cv_train` trains (instead of a run folder or the recipe).
        outlier_k: int, default 10. Neighbours averaged by the outlier score.
        outlier_threshold: float, default 2.0. Images with an outlier score above this are
            flagged (`is_outlier`): twice the median image's distance to its neighbours.
        html_issues: int, default 200. Label issues shown with thumbnails in `audit.html`.
        html_outliers: int, default 50. Outliers shown with thumbnails in `audit.html`.
        manifest: str or None, default None. A scrape folder whose manifest gives the sources;
            None = found from the folder's stage reports.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True, protected_namespaces=())

    model: str = "raw"
    weights: str | None = None
    size: int | None = Field(default=None, ge=8, le=1024, json_schema_extra={"default_text": "the model's own"})
    batch_size: int = Field(default=64, ge=1, le=4096)
    folds: int = Field(default=5, ge=2, le=50)
    seed: int = 42
    method: Literal[
        "low_self_confidence", "prune_by_noise_rate", "prune_by_class", "both", "confident_joint", "predicted_neq_given"
    ] = "low_self_confidence"
    groups: bool = True
    classifier_c: float = Field(default=0.01, gt=0)
    pca: int | None = Field(default=256, ge=2)
    cv_train: bool = False
    cv_epochs: int | None = Field(default=None, ge=1, json_schema_extra={"default_text": "the training config's"})
    train_config: str | None = None
    outlier_k: int = Field(default=10, ge=1, le=1000)
    outlier_threshold: float = Field(default=2.0, gt=0)
    html_issues: int = Field(default=200, ge=0, le=10000)
    html_outliers: int = Field(default=50, ge=0, le=10000)
    manifest: str | None = Field(default=None, json_schema_extra={"default_text": "found from DIR's stage reports"})


class ServeConfig(StrictModel):
    """`imgclf serve`: the HTTP prediction server.

    Attributes:
        host: str, default "127.0.0.1". Address to bind; "0.0.0.0" listens on every interface
            (then anyone who can reach the machine can use the model).
        port: int in [0, 65535], default 8000. TCP port; 0 = a free port chosen by the system
            (the URL printed on start says which).
        max_batch: int >= 1, default 32. Most images per model call (micro-batching); 1 turns
            micro-batching off.
        max_delay_ms: float >= 0, default 10. Longest time, in milliseconds, an image waits for
            its batch to fill before the batch is run anyway.
        max_bytes: int >= 1, default 20,000,000. Largest request body, in bytes (files, URLs
            and multipart overhead together); larger requests get HTTP 413 without being read.
        max_images: int >= 1, default 64. Most images (file and url fields) in one request;
            more get HTTP 413.
        allow_urls: bool, default False. Accept `url` fields, downloaded by the scraper's safe
            downloader.
        allow_private_urls: bool, default False. Also fetch URLs whose host resolves to a
            loopback, private, link-local, multicast or reserved address (off: refused, HTTP
            403, as server-side request forgery protection).
        prefer_export: bool, default False. For a run folder, serve its ONNX (else TFLite)
            export from `RUN/export/` when there is one: no TensorFlow is imported.
        workers: int >= 1 or None, default None (`imgclf.parallel.default_workers()`). Threads
            decoding uploaded images, and as many downloading URLs.
        url_timeout: float > 0, default 20. Time budget of one URL download in seconds, all
            tries and redirects included.
        graceful_timeout: float > 0, default 30. On SIGTERM / Ctrl+C, seconds to wait for
            requests in flight to finish before they are cancelled.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_batch: int = Field(default=32, ge=1, le=4096)
    max_delay_ms: float = Field(default=10.0, ge=0, le=60_000)
    max_bytes: int = Field(default=20_000_000, ge=1)
    max_images: int = Field(default=64, ge=1, le=10_000)
    allow_urls: bool = False
    allow_private_urls: bool = False
    prefer_export: bool = False
    workers: int | None = Field(default=None, ge=1, le=256, json_schema_extra={"default_text": "min(8, 2 x CPUs)"})
    url_timeout: float = Field(default=20.0, gt=0, le=600)
    graceful_timeout: float = Field(default=30.0, gt=0, le=3600)


class EngineConfig(StrictModel):
    """Where the data stages run their per-image work (`imgclf.engine`, docs/scale.md).

    In a run YAML: `engine: ray`, or `engine: {name: ray, address: 10.0.0.5:6379}`; on a
    stage command: `--engine ray --ray-address 10.0.0.5:6379`.

    Attributes:
        name: str, default "local". `local` (this machine, threads) or `ray` (a Ray cluster;
            needs `pip install 'imgclf[ray]'`).
        address: str or None, default None. With `ray`: `host:port` of the cluster's head;
            None = Ray's own `RAY_ADDRESS`, else a Ray started on this machine for the command.
    """

    name: Literal["local", "ray"] = "local"
    address: str | None = Field(
        default=None, json_schema_extra={"default_text": "RAY_ADDRESS, else a Ray started here"}
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `engine: ray` is `engine: {name: ray}`
        return {"name": data} if isinstance(data, str) else data


#: Experiment trackers `--track` knows (`TrackConfig.backend`, `imgclf.track`).
TrackBackend = Literal["none", "mlflow"]


class TrackConfig(StrictModel):
    """Experiment tracking of `train`, `evaluate` and `run` (`--track mlflow`; `imgclf.track`).

    Off by default. With a backend, each training run is one tracker run: the resolved config
    as params, per-epoch metrics, the test metrics with their intervals, the run folder's
    report, plots and records as artifacts, and the model (docs/tracking.md). Tracking never
    stops training: a tracker that fails is reported once and switched off.

    Attributes:
        backend: str, default "none". "none" or "mlflow" (needs `pip install 'imgclf[mlflow]'`).
        uri: str or None, default None. Tracking URI, e.g. `sqlite:///mlflow.db` or
            `http://127.0.0.1:5000`; None = `MLFLOW_TRACKING_URI`, else the URI the run
            already logs to (`run.json` -> `tracking`), else MLflow's own default.
        experiment: str or None, default None. Experiment name; None = `MLFLOW_EXPERIMENT_NAME`,
            else "imgclf". A run that is already tracked keeps its experiment.
        log_model: bool, default True. Log `best.keras` as an MLflow model (raw RGB in
            [0, 255] in, class probabilities out) at the end of training.
    """

    backend: TrackBackend = "none"
    uri: str | None = Field(
        default=None, json_schema_extra={"default_text": "MLFLOW_TRACKING_URI, else the run's, else MLflow's default"}
    )
    experiment: str | None = Field(
        default=None, json_schema_extra={"default_text": "MLFLOW_EXPERIMENT_NAME, else imgclf"}
    )
    log_model: bool = True

    @property
    def enabled(self) -> bool:
        """True when a backend is chosen."""
        return self.backend != "none"


#: A stage `imgclf run` can run (`RunConfig.stages`).
Stage = Literal["scrape", "clean", "prepare", "split", "train", "evaluate", "predict"]

STAGES: tuple[Stage, ...] = ("scrape", "clean", "prepare", "split", "train", "evaluate", "predict")


class RunConfig(StrictModel):
    """Everything `imgclf run CONFIG` needs, one section per stage."""

    name: str = "experiment"
    data_dir: Path = Path("data")  # stage folders: <data_dir>/raw, clean, processed, split
    models_dir: Path = Path("models")
    seed: int = 42
    stages: list[Stage] = Field(default_factory=lambda: list(STAGES))
    source: SourceConfig = Field(default_factory=SourceConfig)
    scrape: ScrapeConfig = Field(default_factory=ScrapeConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)  # used when train.models or train.repeats > 1
    predict: PredictConfig = Field(default_factory=PredictConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)  # read by `imgclf audit --config`; `run` does not audit
    serve: ServeConfig = Field(default_factory=ServeConfig)  # read by `imgclf serve --config`; `run` does not serve
    engine: EngineConfig = Field(default_factory=EngineConfig)  # where clean, prepare, split and predict map
    track: TrackConfig = Field(default_factory=TrackConfig)  # experiment tracking of train and evaluate (off)

    @model_validator(mode="after")
    def _one_source(self) -> RunConfig:
        s = self.source
        if s.dataset is None and s.folder is None and not s.reddit and not s.web:
            raise ValueError("source: give one of dataset, folder, reddit or web")
        # The top-level seed is the default of every stage's seed that the file leaves unset.
        if "seed" in self.model_fields_set:
            for section in (self.split, self.train):
                if "seed" not in section.model_fields_set:
                    object.__setattr__(section, "seed", self.seed)
        return self

    def stage_dir(self, stage: Literal["raw", "clean", "processed", "split"]) -> Path:
        """Returns the folder of a stage, e.g. `data_dir / "raw"`."""
        return self.data_dir / stage


# ---------------------------------------------------------------------------------- loading
def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walks `loc` through nested pydantic models; returns the model owning the last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        current = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            for inner in (cand, *getattr(cand, "__args__", ())):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    current = inner
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def format_validation_error(exc: ValidationError, model: type[BaseModel], origin: str) -> str:
    """Turns a pydantic `ValidationError` into one readable line per problem.

    Args:
        exc: the pydantic error.
        model: the root model that was validated.
        origin: str. Where the values came from (a file name), used as a prefix.

    Returns:
        str: e.g. `"configs/x.yaml: train.epoch: unknown key. Did you mean 'epochs'?"`.
    """
    lines = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        key = ".".join(str(p) for p in loc) or "<root>"
        if err.get("type") == "extra_forbidden":
            owner = _model_at(model, loc)
            hint = suggest(str(loc[-1]), owner.model_fields) if owner else ""
            lines.append(f"{origin}: {key}: unknown key.{hint}")
        else:
            msg = err.get("msg", "invalid value").removeprefix("Value error, ")
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            lines.append(f"{origin}: {key}: {msg}{shown}")
    return "; ".join(lines)


def validate(model: type[BaseModel], data: dict[str, Any], origin: str = "config") -> Any:
    """Validates `data` against `model`, raising `ConfigError` with readable messages.

    Args:
        model: a pydantic model class (e.g. `RunConfig`, `TrainConfig`).
        data: dict. Raw values (from YAML and/or CLI).
        origin: str, default "config". Shown in error messages (usually the file name).

    Returns:
        An instance of `model`.

    Raises:
        ConfigError: on unknown keys (with the nearest valid key) or invalid values.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, origin)) from None


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """Returns `values` without the keys whose value is None (CLI options left unset)."""
    return {k: v for k, v in values.items() if v is not None}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Returns `base` with `override` merged in recursively (dicts merge; other values replace)."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(item: str) -> dict[str, Any]:
    """Parses one `--set` override `dotted.key=value` into a nested dict.

    The value is parsed as YAML (so `3` is an int, `[0.8, 0.1, 0.1]` a list, `true` a bool);
    nothing is `eval`-ed.

    Args:
        item: str. E.g. `"train.epochs=3"`.

    Returns:
        dict, e.g. `{"train": {"epochs": 3}}`.

    Raises:
        ConfigError: if `item` has no `=` or an empty key.
    """
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} is not of the form key=value", "e.g. --set train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping from `path`.

    Raises:
        ConfigError: if the file is missing, is not valid YAML, or is not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}", "give a path such as configs/digits.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def stage_config(schema: type[BaseModel], section: str, config: str | Path | None, /, **values: Any) -> Any:
    """Builds a stage config: the `section` of a run YAML (if given), then options on top.

    The one place where a YAML section and command-line options meet: options left unset
    (None) never override a value from the file (timm's `_factory.py` rule).

    Args:
        schema: pydantic class of the stage (e.g. `PrepareConfig`). Positional only.
        section: str. Key of the stage in a run config (e.g. `"prepare"`); a dotted key walks
            nested sections (`"train.augment"`). Positional only.
        config: path to a run config YAML, or None. Positional only.
        **values: the command's options (None = not given).

    Returns:
        An instance of `schema`.

    Raises:
        ConfigError: a missing / invalid file, unknown keys or invalid values, naming the file
            and key.
    """
    data: dict[str, Any] = {}
    origin = "command line"
    if config is not None:
        node: Any = read_yaml(config)
        for part in section.split("."):
            node = (node or {}).get(part) if isinstance(node, dict) else None
        if node is not None and not isinstance(node, dict):
            raise ConfigError(f"{config}: {section} must be a mapping of keys, got {type(node).__name__}")
        data = node or {}
        origin = f"{config} [{section}]"
    return validate(schema, deep_merge(data, drop_none(values)), origin=origin)


def load_run_config(path: str | Path, overrides: list[dict[str, Any]] | None = None) -> RunConfig:
    """Loads `RunConfig` from a YAML file and applies overrides (later ones win).

    Args:
        path: path to a YAML file (see `configs/default.yaml`).
        overrides: list of nested dicts, e.g. from `parse_override`, or None.

    Returns:
        RunConfig, validated.

    Raises:
        ConfigError: file missing, invalid YAML, unknown keys, invalid values.
    """
    data = read_yaml(path)
    if isinstance(data.get("engine"), str):  # `engine: ray`, so that `--ray-address` merges into it
        data["engine"] = {"name": data["engine"]}
    for o in overrides or []:
        data = deep_merge(data, o)
    return validate(RunConfig, data, origin=str(path))
