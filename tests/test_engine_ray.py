"""`--engine ray`: the data stages on a real two-node Ray cluster on 127.0.0.1 give the answer of `--engine local`.

The session's one cluster (`ray_cluster` in tests/conftest.py: a head and a second node, 1 CPU
each, every process on loopback, Ray's files in a private temporary folder); the driver is this
process. Outputs are compared
byte for byte, reports field by field (except the wall time and the output folder's name).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import RAY_NODE
from imgclf.cli.main import app

# every Ray process of these tests on loopback: read by Ray when it is imported
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

# one cluster for the whole module: under `pytest -n 2 --dist loadgroup` (make test) its tests
# run in one worker instead of two workers starting a cluster each
pytestmark = pytest.mark.xdist_group("ray-cluster")

DATA = Path(__file__).parent / "data"
NODE = RAY_NODE


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    """The session's two-node Ray cluster on 127.0.0.1 (`ray_cluster`, tests/conftest.py)."""
    return ray_cluster


def _picture(rng: np.random.Generator, side: int) -> np.ndarray:
    """A smooth random RGB picture (upscaled noise), `side` x `side`, uint8."""
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC))


def make_dataset(root: Path, per_class: int, seed: int = 0) -> Path:
    """Three classes of small pictures with exact copies, brightened near copies, a copy under
    another label, broken files, a blank picture and a stray file."""
    rng = np.random.default_rng(seed)
    for c in ("a", "b", "c"):
        (root / c).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(_picture(rng, int(rng.integers(24, 48)))).save(root / c / f"{c}{k:04d}.png")
    first = root / "a" / "a0000.png"
    shutil.copyfile(first, root / "a" / "copy.png")
    bright = np.clip(np.asarray(Image.open(first)).astype(int) + 12, 0, 255).astype(np.uint8)
    Image.fromarray(bright).save(root / "a" / "bright.png")
    shutil.copyfile(root / "b" / "b0001.png", root / "c" / "b_in_c.png")  # a label conflict
    Image.fromarray(np.asarray(Image.open(root / "c" / "c0002.png"))[:, ::-1]).save(root / "c" / "mirror.png")
    shutil.copyfile(DATA / "truncated.jpg", root / "b" / "broken.jpg")
    shutil.copyfile(DATA / "not_an_image.jpg", root / "c" / "page.jpg")
    Image.new("RGB", (32, 32), (128, 128, 128)).save(root / "c" / "blank.png")
    (root / "stray.txt").write_text("not in a class folder")
    return root


def add_colour_copies(root: Path) -> None:
    """A real photo (160 x 107) in class `a`, with a grayscale and a sepia copy of it (the
    detector's colour-change test, for pictures of at least 64 px)."""
    from sklearn.datasets import load_sample_image

    photo = Image.fromarray(load_sample_image("flower.jpg")).resize((160, 107), Image.Resampling.LANCZOS)
    photo.save(root / "a" / "photo.png")
    photo.convert("L").convert("RGB").save(root / "a" / "photo_grey.png")
    sepia = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    toned = np.clip(np.rint(np.asarray(photo, np.float64) @ sepia.T), 0, 255).astype(np.uint8)
    Image.fromarray(toned).save(root / "a" / "photo_sepia.png")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = make_dataset(tmp_path_factory.mktemp("raw") / "raw", per_class=40)
    add_colour_copies(root)
    return root


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, but the reports that hold wall times."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _report(path: Path, out: Path) -> dict:
    """A JSON report without its wall time, with the output folder's name replaced."""
    text = path.read_text().replace(str(out), "OUT")
    data = json.loads(text)
    data.pop("seconds", None)
    return data


def _invoke(*args: object) -> None:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output


def _same_signatures(a: Path, b: Path) -> None:
    """The same source-signature records, but for the files' times (`stamps`: size, mtime)."""
    with np.load(a) as x, np.load(b) as y:
        assert x.files == y.files
        for k in x.files:
            if k == "stamps":
                np.testing.assert_array_equal(x[k][:, 0], y[k][:, 0])  # sizes
            else:
                np.testing.assert_array_equal(x[k], y[k])


def _same_output(a: Path, b: Path, reports: tuple[str, ...], roots: tuple[Path, Path] | None = None) -> None:
    """Byte-identical files, equal reports (but for the wall time and the folders under
    `roots`, default `a` and `b`), equal signature records."""
    ra, rb = roots or (a, b)
    fa, fb = _files(a), _files(b)
    timed = {f"_reports/{r}" for r in reports} | {"_reports/source_signatures.npz"}
    assert sorted(fa) == sorted(fb)
    different = [k for k in fa if fa[k] != fb[k] and k not in timed]
    assert different == []
    for r in reports:
        assert _report(a / "_reports" / r, ra) == _report(b / "_reports" / r, rb)
    if "_reports/source_signatures.npz" in fa:
        _same_signatures(a / "_reports/source_signatures.npz", b / "_reports/source_signatures.npz")


def test_clean_prepare_split_on_ray_equal_local(cluster, raw, tmp_path):
    address = cluster.address
    runs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        _invoke("clean", raw, "--out", out / "clean", "--engine", engine, "--ray-address", address, "--flips")
        _invoke(
            "prepare", out / "clean", "--out", out / "prep", "--size", 16, "--engine", engine, "--ray-address", address
        )
        _invoke("split", out / "prep", "--out", out / "split", "--engine", engine, "--ray-address", address)
        runs[engine] = out
    local, ray_ = runs["local"], runs["ray"]
    rejects = (local / "clean" / "_reports" / "rejects.csv").read_text()
    assert "duplicate" in rejects and "truncated" in rejects and "not_in_class_folder" in rejects
    report = json.loads((local / "clean" / "_reports" / "clean_report.json").read_text())
    assert report["duplicate_pairs"].get("flip") and report["label_conflicts"]  # the search had work to do
    assert "photo_grey.png" in rejects and "photo_sepia.png" in rejects  # colour-filtered copies
    _same_output(local / "clean", ray_ / "clean", ("clean_report.json",))
    _same_output(local / "prep", ray_ / "prep", ())
    _same_output(local / "split", ray_ / "split", ("split_report.json",), (local, ray_))


def test_predict_a_folder_and_urls_on_ray_equals_local(cluster, raw, tmp_path):
    from helpers_runs import make_run
    from scrape_servers import Server, static

    run = make_run(tmp_path / "model")
    folder = tmp_path / "photos"
    shutil.copytree(raw / "a", folder)
    (folder / "empty.png").write_bytes(b"")
    site = Server({"/a.png": static((raw / "b" / "b0003.png").read_bytes()), "/gone.png": static(b"", status=404)})
    out = {}
    with site:
        urls = [site.url("/a.png"), site.url("/gone.png")]
        for engine in ("local", "ray"):
            res = CliRunner().invoke(
                app,
                ["predict", str(folder), *urls, "--model", str(run), "--json", "--batch-size", "8"]
                + ["--engine", engine, "--ray-address", cluster.address],
            )
            assert res.exit_code == 0, res.output
            out[engine] = json.loads(res.stdout[res.stdout.index("[") : res.stdout.rindex("]") + 1])
    assert out["ray"] == out["local"]
    assert len(out["local"]) == len(list(folder.iterdir())) + 2 and any(p["error"] for p in out["local"])
    by_input = {p["input"]: p for p in out["local"]}
    assert by_input[urls[0]]["label"] and by_input[urls[1]]["error"]  # a URL read, a URL gone


def test_scrape_web_urls_file_on_ray_equals_local_and_keeps_each_host_on_one_worker(cluster, tmp_path):
    from scrape_servers import Server, png, static

    robots = b"User-agent: *\nCrawl-delay: 0.3\nDisallow: /no/\n"
    sites = [Server({"/robots.txt": static(robots, "text/plain")}, {"/img/": static(png((k, 7, 9)))}) for k in range(2)]
    for k, site in enumerate(sites):  # distinct images per URL
        for j in range(4):
            site.routes[f"/img/{j}.png"] = static(png((k * 40 + j, 11, 200)))
        site.routes["/no/x.png"] = static(png((k, 250, 0)))
        site.routes["/gone.png"] = static(b"", status=404)
    with sites[0], sites[1]:
        urls = [s.url(p) for p in ("/img/0.png", "/img/1.png", "/no/x.png", "/gone.png", "/img/2.png") for s in sites]
        (tmp_path / "urls.txt").write_text("\n".join(urls) + "\n")
        for engine in ("local", "ray"):
            for site in sites:
                site.times.clear()
            args = ["scrape", "web", "--urls-file", tmp_path / "urls.txt", "--label", "x", "--out", tmp_path / engine]
            _invoke(*args, "--delay", "0.1", "--engine", engine, "--ray-address", cluster.address)
            for site in sites:  # --delay after robots.txt, then its Crawl-delay between two requests to a host
                times = sorted(t for ts in site.times.values() for t in ts)
                gaps = [b - a for a, b in itertools.pairwise(times)]
                assert gaps[0] >= 0.099 and min(gaps[1:]) >= 0.299, (engine, gaps)
        status = {}
        for engine in ("local", "ray"):
            res = CliRunner().invoke(app, ["scrape", "status", str(tmp_path / engine), "--json"])
            assert res.exit_code == 0, res.output
            status[engine] = json.loads(res.stdout.replace(str(tmp_path / engine), "OUT"))
            status[engine].pop("last_time", None)  # when it ran
    assert status["ray"] == status["local"]
    local, ray_ = _files(tmp_path / "local"), _files(tmp_path / "ray")
    images = sorted(k for k in local if k.startswith("x/"))
    assert len(images) == 6 and images == sorted(k for k in ray_ if k.startswith("x/"))
    assert all(local[k] == ray_[k] for k in images)


def test_audit_on_ray_equals_local(cluster, raw, tmp_path):
    from imgclf.audit.run import audit_folder
    from imgclf.config import AuditConfig
    from imgclf.engine.ray import RayExecutor

    cfg = AuditConfig(folds=3, seed=1, batch_size=16, html_issues=0, html_outliers=0)
    audit_folder(raw, tmp_path / "local", cfg)
    with RayExecutor(cluster.address) as ex:
        audit_folder(raw, tmp_path / "ray", cfg, executor=ex)
    for name in ("label_issues.csv", "outliers.csv", "scores.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    with np.load(tmp_path / "ray" / "oof.npz") as a, np.load(tmp_path / "local" / "oof.npz") as b:
        for k in b.files:
            np.testing.assert_array_equal(a[k], b[k])

    def report(engine: str) -> dict:
        data = json.loads((tmp_path / engine / "audit.json").read_text().replace(str(tmp_path / engine), "OUT"))
        data.pop("seconds", None)
        return data

    assert report("ray") == report("local")


def test_place_actors_spreads_n_workers_over_the_nodes(cluster):
    import ray

    from imgclf.engine.ray import connect, place_actors

    class _Where:  # a training worker's stand-in (defined here: pickled by value for the workers)
        def __init__(self, rank: int):
            self.rank = rank

        def node(self) -> tuple[int, str]:
            return self.rank, ray.get_runtime_context().get_node_id()

    ray_, started = connect(cluster.address)
    assert ray_ is ray and not started
    group = place_actors(_Where, 2, 0, strategy="STRICT_SPREAD", timeout=60)
    try:
        answers = ray.get([a.node.remote() for a in group.actors])
        assert [r for r, _ in answers] == [0, 0] and len({n for _, n in answers}) == 2
    finally:
        group.shutdown()


def test_engine_comes_from_the_option_else_the_config(tmp_path):
    from imgclf.cli.engine_options import engine_config
    from imgclf.errors import ConfigError

    f = tmp_path / "run.yaml"
    f.write_text("engine: ray\n")
    assert engine_config(f, None, None).name == "ray" and engine_config(f, "local", None).name == "local"
    f.write_text("engine: {name: ray, address: 10.0.0.5:6379}\n")
    assert engine_config(f, None, None).address == "10.0.0.5:6379"
    assert engine_config(None, None, None).name == "local"
    with pytest.raises(ConfigError, match="name"):
        engine_config(None, "spark", None)


def test_ray_executor_keeps_item_order_and_raises_the_map_s_own_error(cluster):
    from imgclf.engine.ray import RayExecutor

    with RayExecutor(cluster.address, block_size=7) as ex:
        assert ex.workers == 2 and not ex.started  # this process was connected already
        assert list(ex.map(abs, range(-50, 50))) == [abs(x) for x in range(-50, 50)]
        with pytest.raises(ValueError, match="invalid literal") as raised:
            list(ex.map(int, ["1", "2", "x"]))
        assert type(raised.value) is ValueError  # as `int` raised it, not Ray's wrapper
        assert list(ex.map(abs, [])) == []


def test_ray_executor_maps_as_ray_data_tasks_and_streams_the_blocks(cluster):
    from imgclf.engine.ray import RayExecutor

    def where(x: int) -> tuple[int, str, float]:  # defined here: pickled by value for the workers
        import ray

        time.sleep(0.02)
        return x, ray.get_runtime_context().get_task_name() or "", time.time()

    with RayExecutor(cluster.address, block_size=6, threads=1) as ex:  # `fn` in the task's thread
        results = ex.map(where, range(240))
        first = next(results)
        received = time.time()
        rest = list(results)
    out = [first, *rest]
    assert [x for x, _, _ in out] == list(range(240))
    assert {name for _, name, _ in out} == {"MapBatches(_run_batch)"}  # Ray Data's map_batches tasks
    # the first block reached the driver while later blocks still ran: the bar moves block by block
    assert max(t for _, _, t in rest) > received


def test_ray_executor_keeps_the_parts_of_split_in_the_object_store(cluster):
    import ray

    from imgclf.engine.ray import Kept, RayExecutor

    def split(records: list[int], start: int) -> tuple[list[int], tuple[int, list[int]]]:
        return [-r for r in records], (start, [r * 10 for r in records])

    keep = Kept(split)
    with RayExecutor(cluster.address, block_size=7) as ex:
        assert list(ex.map(abs, range(-30, 30), keep=keep)) == [-abs(x) for x in range(-30, 30)]
    assert keep.starts == list(range(0, 60, 7)) and len(keep.refs) == len(keep.starts)
    assert ray.get(keep.refs) == [(s, [abs(x) * 10 for x in range(-30 + s, min(30, -23 + s))]) for s in keep.starts]


def test_a_killed_worker_costs_a_retry_and_past_the_retries_an_engine_error(cluster, tmp_path):
    from imgclf.engine.ray import RayExecutor
    from imgclf.errors import EngineError

    died = tmp_path / "died"

    def die_once(x: int) -> int:
        if x == 13 and not died.exists():
            died.write_text("the worker running item 13 exits")
            os._exit(1)
        return 2 * x

    def die(x: int) -> int:
        if x == 13:
            os._exit(1)
        return x

    with RayExecutor(cluster.address, block_size=4) as ex:
        assert list(ex.map(die_once, range(40))) == [2 * x for x in range(40)]
    assert died.exists()
    with (
        RayExecutor(cluster.address, block_size=4, max_retries=1) as ex,
        pytest.raises(EngineError, match=r"a block of .*die was lost 2 times"),
    ):
        list(ex.map(die, range(40)))


def test_parts_lost_with_their_node_are_made_again_from_their_lineage(cluster):
    """The parts `Kept` holds are task outputs: those on a removed node are made again (the
    part-taking task and the Ray Data task before it run again on the node left)."""
    import ray

    from imgclf.engine.ray import Kept, RayExecutor

    def split(records: list[int], start: int) -> tuple[list[int], tuple[int, str, np.ndarray]]:
        import ray

        node = ray.get_runtime_context().get_node_id()
        return records, (start, node, np.full(40_000, start, np.float64))  # 320 KB: in the object store

    victim = next(iter(cluster.worker_nodes))
    keep = Kept(split)
    with RayExecutor(cluster.address, block_size=5) as ex:
        assert list(ex.map(abs, range(100), keep=keep)) == list(range(100))
    where = ray.experimental.get_object_locations(keep.refs)
    lost = [k for k, ref in enumerate(keep.refs) if where[ref]["node_ids"] == [victim.node_id]]
    assert lost, "no part was made on the second node"
    cluster.remove_node(victim)
    try:
        parts = ray.get(keep.refs, timeout=300)
    finally:
        cluster.add_node(**NODE)  # for the tests after this one
    assert [p[0] for p in parts] == keep.starts
    assert all(np.array_equal(p[2], np.full(40_000, p[0], np.float64)) for p in parts)
    assert all(parts[k][1] != victim.node_id for k in lost)  # made again, on the node left


def _imgclf(*args: str, env: dict | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    cmd = [*prefix, sys.executable, "-m", "imgclf", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or dict(os.environ), timeout=300)


def test_ray_data_prints_nothing_of_its_own(cluster, raw, tmp_path):
    # a new process: Ray Data's defaults are what it starts with
    out = tmp_path / "out"
    res = _imgclf("clean", raw, "--out", out, "--engine", "ray", "--ray-address", cluster.address)
    assert res.returncode == 0, res.stdout + res.stderr
    text = res.stdout + res.stderr
    for mark in ("Dataset", "Progress bars", "MapBatches", "ray.data", "streaming_executor", "Deprecat"):
        assert mark not in text, text
    bars = [line for line in res.stderr.splitlines() if "clean: verify + fingerprint" in line]
    assert len(bars) == 1, res.stderr


def test_help_does_not_import_ray():
    code = (
        "import sys; from typer.testing import CliRunner; from imgclf.cli.main import app\n"
        "for args in (['--help'], ['clean', '--help'], ['prepare', '--help'], ['split', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print('ray' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", res.stderr


def test_without_ray_installed_one_line_says_how_to_install(tmp_path):
    # a Python in which `import ray` fails, as on a machine without it
    code = (
        "import sys\n"
        "class NoRay:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'ray' or name.startswith('ray.'):\n"
        "            raise ImportError('No module named ray')\n"
        "sys.meta_path.insert(0, NoRay())\n"
        "from imgclf.cli.main import main\n"
        f"sys.argv = ['imgclf', 'clean', {str(tmp_path)!r}, '--out', {str(tmp_path / 'out')!r}, '--engine', 'ray']\n"
        "main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    text = res.stdout + res.stderr
    assert res.returncode == 1 and "Traceback" not in text
    assert "needs Ray, which is not installed" in text and "pip install 'imgclf[ray]'" in text


def test_unreachable_cluster_is_one_line(raw, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    res = _imgclf("clean", raw, "--out", tmp_path / "out", "--engine", "ray", "--ray-address", f"127.0.0.1:{port}")
    text = res.stdout + res.stderr
    assert res.returncode == 1 and "Traceback" not in text
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in text
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(
    shutil.which("unshare") is None, reason="needs unshare (util-linux) to hide a folder from the nodes"
)
def test_input_folder_not_visible_to_a_node_is_one_line(cluster, tmp_path):
    # the driver runs in a mount namespace of its own, with the data on a tmpfs the nodes do not see
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    clean = f"{sys.executable} -m imgclf clean {hidden}/raw --out {tmp_path}/out"
    script = (
        f"mount -t tmpfs none {hidden} && mkdir -p {hidden}/raw/a && cp {DATA / 'blank.png'} {hidden}/raw/a/x.png && "
        f"{clean} --engine ray --ray-address {cluster.address}"
    )
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -m is not permitted here")
    res = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True, text=True, timeout=300
    )
    text = res.stdout + res.stderr
    assert res.returncode == 1 and "Traceback" not in text
    assert f"{hidden}/raw is not visible on the Ray node 127.0.0.1" in text
    assert "filesystem every node mounts" in text


def test_run_reads_engine_from_the_config(cluster, raw, tmp_path):
    from imgclf.config import RunConfig
    from imgclf.run import run_pipeline

    outs = {}
    for engine in ("local", "ray"):
        cfg = RunConfig.model_validate(
            {
                "source": {"folder": str(raw)},
                "data_dir": str(tmp_path / engine),
                "stages": ["clean", "prepare", "split"],
                "prepare": {"size": 16},
                "engine": {"name": engine, "address": cluster.address},
            }
        )
        run_pipeline(cfg)
        outs[engine] = tmp_path / engine
    assert RunConfig.model_validate({"source": {"folder": "x"}, "engine": "ray"}).engine.name == "ray"
    _same_output(outs["local"] / "split", outs["ray"] / "split", ("split_report.json",), (outs["local"], outs["ray"]))


def test_run_s_engine_option_overrides_the_config(cluster, raw, tmp_path):
    from imgclf.config import load_run_config

    config = tmp_path / "run.yaml"
    config.write_text(f"source: {{folder: {raw}}}\nengine: ray\n")
    assert load_run_config(config, [{"engine": {"address": "10.0.0.5:6379"}}]).engine.name == "ray"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    stage = {"source": {"folder": str(raw)}, "stages": ["clean"]}
    config.write_text(json.dumps({**stage, "engine": {"name": "ray", "address": f"127.0.0.1:{port}"}}))
    # new processes, connected to nothing: the config's cluster cannot be reached ...
    res = _imgclf("run", config, "--data-dir", tmp_path / "cfg")
    assert res.returncode == 1 and f"cannot reach the Ray cluster at 127.0.0.1:{port}" in res.stdout + res.stderr
    # ... and --engine / --ray-address override it
    wide = {**os.environ, "COLUMNS": "200"}  # the bars' counts in full
    for engine in ("local", "ray"):
        res = _imgclf(
            "run",
            config,
            "--data-dir",
            tmp_path / engine,
            "--engine",
            engine,
            "--ray-address",
            cluster.address,
            env=wide,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        # one bar for the map, fed by the blocks as they complete, at the image count at the end
        n = sum(1 for c in ("a", "b", "c") for _ in (raw / c).iterdir())
        bars = [line for line in res.stderr.splitlines() if "clean: verify + fingerprint" in line]
        assert len(bars) == 1 and f"{n}/{n}" in bars[0], res.stderr
    roots = (tmp_path / "local", tmp_path / "ray")
    _same_output(roots[0] / "clean", roots[1] / "clean", ("clean_report.json",), roots)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[Path, Path]:
    """A few thousand images, and their clean output on this machine (undisturbed)."""
    from imgclf.clean import clean_folder
    from imgclf.config import CleanConfig

    root = tmp_path_factory.mktemp("big")
    clean_folder(make_dataset(root / "raw", per_class=1000, seed=3), root / "local", CleanConfig())
    return root / "raw", root / "local"


def test_a_killed_driver_leaves_no_partial_file_and_the_same_command_resumes(cluster, big, tmp_path):
    raw_, local = big
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "imgclf", "clean", str(raw_), "--out", str(out), "--engine", "ray"]
    cmd += ["--ray-address", cluster.address]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*/*.png"))) < 300 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until the copies are under way
    assert driver.poll() is None, "clean finished before its driver could be killed: give it more images"
    driver.kill()
    driver.wait()
    time.sleep(1.0)  # tasks of the dead driver that were running finish (or are cancelled)
    assert not (out / "_reports" / "clean_report.json").exists()
    for f in out.rglob("*.png"):  # every file under its final name is whole
        if not f.name.startswith("."):
            assert f.read_bytes() == (raw_ / f.relative_to(out)).read_bytes()
    res = _imgclf(*cmd[3:])  # the same command again
    assert res.returncode == 0, res.stdout + res.stderr
    _same_output(local, out, ("clean_report.json",))


def test_a_node_killed_during_clean_costs_retries_not_the_run(cluster, big, tmp_path):
    """The second node is removed while `clean` runs on a few thousand images; Ray runs its
    blocks again on the head, and the output is the undisturbed run's."""
    from imgclf.clean import clean_folder
    from imgclf.config import CleanConfig
    from imgclf.engine.ray import RayExecutor

    raw_, local = big
    victim = next(iter(cluster.worker_nodes))
    done: dict[str, object] = {}

    def run() -> None:
        try:
            with RayExecutor(cluster.address, block_size=32) as ex:
                done["summary"] = clean_folder(raw_, tmp_path / "ray", CleanConfig(), executor=ex)
        except BaseException as exc:  # reported by the test thread
            done["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    while not (tmp_path / "ray").exists():  # the map starts right after the output folder is made
        time.sleep(0.05)
    time.sleep(1.0)
    assert worker.is_alive(), "clean finished before the node could be killed: give it more images"
    cluster.remove_node(victim)
    worker.join(timeout=600)
    cluster.add_node(**NODE)  # for the tests after this one
    assert "error" not in done, done.get("error")
    _same_output(local, tmp_path / "ray", ("clean_report.json",))


# ------------------------------------------------------------ the distributed Hamming search
def _planted_codes(n: int, seed: int) -> np.ndarray:
    """Random 64-bit codes, a fifth of them copies of others with 0-11 bits flipped."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    src, dst = rng.integers(0, n, n // 5), rng.integers(0, n, n // 5)
    flips = np.zeros(n // 5, np.uint64)
    for _ in range(11):
        flips ^= np.where(rng.random(n // 5) < 0.5, np.uint64(1) << rng.integers(0, 64, n // 5).astype(np.uint64), 0)
    codes[dst] = codes[src] ^ flips
    return codes


def _blocks(codes: np.ndarray, size: int):
    from imgclf.clean.similarity.distributed import CodeBlock

    return [CodeBlock(np.arange(s, min(s + size, len(codes))), codes[s : s + size]) for s in range(0, len(codes), size)]


@pytest.mark.parametrize(("n", "radius", "prefix_bits"), [(3000, 8, None), (20000, 8, 5), (5000, 12, 2), (8000, 4, 0)])
def test_partitioned_hamming_join_is_the_local_search(n, radius, prefix_bits):
    from imgclf.clean.similarity.distributed import sharded_hamming_pairs
    from imgclf.clean.similarity.hamming import hamming_cross_pairs, hamming_pairs

    codes = _planted_codes(n, seed=n)
    got = sharded_hamming_pairs(_blocks(codes, 777), None, n, radius, prefix_bits)
    want = hamming_pairs(codes, radius, bits=64)
    assert len(want[0]) > 100
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)
    other = _planted_codes(n // 2, seed=n + 1)
    other[:50] = codes[:50] ^ np.uint64(6)
    got = sharded_hamming_pairs(_blocks(codes, 999), _blocks(other, 500), n, radius, prefix_bits)
    for x, y in zip(got, hamming_cross_pairs(codes, other, radius, bits=64)):
        np.testing.assert_array_equal(x, y)


def test_hamming_join_on_the_cluster_is_the_local_search(cluster):
    import ray

    from imgclf.clean.similarity.distributed import ray_hamming_pairs
    from imgclf.clean.similarity.hamming import hamming_pairs

    codes = _planted_codes(60_000, seed=7)
    blocks = [ray.put(b) for b in _blocks(codes, 8192)]
    got = ray_hamming_pairs(blocks, None, len(codes), 8)
    for x, y in zip(got, hamming_pairs(codes, 8, bits=64)):
        np.testing.assert_array_equal(x, y)
