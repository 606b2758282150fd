"""`imgclf review` and the decisions `clean` replays: the real server on 127.0.0.1 (a
subprocess, as a user starts it), plain HTTP for the safety rules, and a real browser
(Debian's chromium driven by Playwright) for the keyboard flow and every view.

Data: digits exported by `imgclf.datasets` and cleaned by the real `imgclf clean`; the audit
and run files are written here through their records' writers (`imgclf.records.audit`'s
`label_issues.csv` and `outliers.csv`, `imgclf.records.run`'s `metrics.json` with its
`confident_errors`).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from imgclf.clean.replay import ReplayItem, plan_replay
from imgclf.cli.main import app
from imgclf.records.audit import LabelIssue, Outlier, save_label_issues, save_outliers
from imgclf.records.decisions import (
    Decision,
    DecisionIndex,
    DecisionLog,
    database_path,
    read_decisions,
)
from imgclf.records.run import MetricsRecord, save_metrics

URL_LINE = re.compile(r"review: (http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{20,}))\n")
WAIT_MS = 30_000  # upper bound for the page to react; never an assertion on speed


# ------------------------------------------------------------------------------- helpers
def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _rows(root: Path) -> list[tuple]:
    """The decisions table as plain SQL sees it (the contract, not our reader)."""
    with contextlib.closing(sqlite3.connect(database_path(root))) as c:
        return c.execute("SELECT action, path, label, new_label, view, sha256 FROM decisions ORDER BY id").fetchall()


def _clean(raw: Path, out: Path) -> str:
    r = CliRunner().invoke(app, ["clean", str(raw), "--out", str(out), "--workers", "1"], env={"IMGCLF_QUIET": "1"})
    assert r.exit_code == 0, r.output
    return r.output


def _tree(root: Path) -> dict[str, object]:
    """Every file (relative path -> sha256; the report without its wall time) except the
    database, for idempotence checks."""
    out: dict[str, object] = {
        p.relative_to(root).as_posix(): _sha(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("decisions.sqlite")
    }
    report = json.loads((root / "_reports" / "clean_report.json").read_text())
    report.pop("seconds")
    out["_reports/clean_report.json"] = report
    return out


class Server:
    """`imgclf review DIR ... --no-browser --port 0` in a subprocess; reads its one stdout line."""

    def __init__(self, root: Path, *args: str, log: Path):
        self.err = open(log, "ab")  # noqa: SIM115 - the server writes to it until stop() closes it
        cmd = [sys.executable, "-m", "imgclf", "review", str(root), *args, "--no-browser", "--port", "0"]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self.err, text=True, env={**os.environ, "IMGCLF_QUIET": "1"}
        )
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)  # a guard against a hung start, not a measurement
        line = box[0] if box else ""
        m = URL_LINE.fullmatch(line)
        if not m:
            self.stop()
            pytest.fail(f"no `review: URL` line on stdout (got {line!r}); stderr: {log.read_text(errors='replace')}")
        self.url, self.port, self.token = m.group(1), int(m.group(2)), m.group(3)
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self, *, kill: bool = False) -> str:
        """Stops the server (SIGKILL with `kill`) and returns what else it printed on stdout."""
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
        rest = self.proc.stdout.read() if self.proc.stdout else ""
        self.proc.wait(60)
        self.err.close()
        return rest


def _http(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    host: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One raw request (the path is sent exactly as given, `..` and all)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """40 real digits (4 per class) plus one picture copied into a second class (a label conflict)."""
    from imgclf.datasets import export_dataset

    root = tmp_path_factory.mktemp("raw")
    export_dataset("digits", root, limit_per_class=4)
    first7 = sorted((root / "7").iterdir())[0]
    shutil.copyfile(first7, root / "1" / "copy_of_a_seven.png")
    return root


@pytest.fixture
def cleaned(raw, tmp_path) -> Path:
    out = tmp_path / "clean"
    _clean(raw, out)
    return out


@pytest.fixture
def reports(cleaned, tmp_path) -> dict[str, Path]:
    """An audit folder and an evaluated run folder, written through their records' writers."""
    files = sorted(p.relative_to(cleaned).as_posix() for p in cleaned.glob("[0-9]/*.png"))
    audit = tmp_path / "audit"
    audit.mkdir()
    issues = [(files[13], "3", "8", 0.012), (files[5], "1", "7", 0.2), (files[30], "7", "1", 0.05)]
    save_label_issues(audit, [LabelIssue(p, p.split("/")[0], s, q) for p, _, s, q in issues])
    save_outliers(audit, [Outlier(files[2], 3.5), Outlier(files[20], 1.7)])
    (audit / "audit.json").write_text(json.dumps({"counts": {"label_issues": 3}}))
    run = tmp_path / "run"
    run.mkdir()
    errors = [
        {
            "file": str(tmp_path / "split" / "test" / f.split("/")[0] / Path(f).name),
            "true": f.split("/")[0],
            "predicted": "9",
            "probability": 0.97,
        }
        for f in (files[8], files[16])
    ]
    errors.append(
        {"file": str(tmp_path / "split" / "test" / "4" / "gone.png"), "true": "4", "predicted": "9", "probability": 0.9}
    )
    metrics = MetricsRecord(
        accuracy=0.5,
        loss=1.0,
        precision_macro=0.5,
        recall_macro=0.5,
        f1_macro=0.5,
        top_k=3,
        top_k_accuracy=0.9,
        ece=0.1,
        n_images=40,
        class_names=[str(c) for c in range(10)],
        confident_errors=errors,
    )
    save_metrics(run, "test", metrics.model_dump())
    return {"audit": audit, "run": run, "issues": [p for p, *_ in issues]}


# -------------------------------------------------------------------------- pure replay
def _d(i: int, action: str, path: str, sha: str, new_label: str | None = None, label: str = "cat") -> Decision:
    return Decision(i, f"2026-01-01T00:00:{i:02d}", action, path, label, new_label, "test", sha)


def test_replay_rule_undo_stack_rename_and_path_fallback():
    items = [
        ReplayItem("cat/a.png", "A", "cat"),
        ReplayItem("cat/b.png", "B", "cat"),
        ReplayItem("cat/c.png", "C", "cat"),
        ReplayItem("dog/c.png", "D", "dog"),
        ReplayItem("cat/moved.png", "E", "cat"),
        ReplayItem("cat/edited.png", "F2", "cat"),
        ReplayItem("dog/a_copy.png", "A", "dog"),  # the bytes of cat/a.png, filed under dog
        ReplayItem("cat/h1.png", "H", "cat"),
        ReplayItem("cat/h2.png", "H", "cat"),
    ]
    ds = [
        _d(1, "reject", "cat/a.png", "A"),
        _d(2, "relabel", "cat/b.png", "B", "dog"),
        _d(3, "keep", "cat/b.png", "B"),
        _d(4, "undo", "cat/b.png", "B"),  # takes back the keep: the relabel is effective again
        _d(5, "relabel", "cat/c.png", "C", "dog"),  # dog/c.png exists: renamed on the way
        _d(6, "reject", "cat/old_name.png", "E"),  # renamed since: found by sha256
        _d(7, "reject", "cat/edited.png", "F1"),  # bytes changed since: found by path
        _d(8, "relabel", "_rejected/near_duplicate/cat/gone.png", "G", "dog"),  # not in the input any more
        _d(9, "relabel", "cat/a.png", "A", "_bad"),  # not a class name
        _d(10, "undo", "cat/a.png", "A"),
        _d(11, "keep", "cat/h_renamed.png", "H"),  # both copies renamed since: both kept
    ]
    plan = plan_replay(ds, items)
    acts = {rel: (a.action, a.dest, a.matched_by) for rel, a in plan.actions.items()}
    assert acts == {
        "cat/a.png": ("reject", "_rejected/manual/cat/a.png", "sha256"),
        "cat/b.png": ("relabel", "dog/b.png", "sha256"),
        "cat/c.png": ("relabel", "dog/cat__c.png", "sha256"),
        "cat/moved.png": ("reject", "_rejected/manual/cat/moved.png", "sha256"),
        "cat/edited.png": ("reject", "_rejected/manual/cat/edited.png", "path"),
        "cat/h1.png": ("keep", "cat/h1.png", "sha256"),
        "cat/h2.png": ("keep", "cat/h2.png", "sha256"),
    }  # dog/a_copy.png has the bytes of cat/a.png, but the decision was taken on cat/a.png
    assert [d.id for d in plan.not_found] == [8]
    assert plan.counts() == {
        "rows": 11,
        "rejected": 3,
        "relabelled": 2,
        "kept": 2,
        "undone": 2,
        "not_found": 1,
        "invalid": 0,
    }
    assert plan_replay(list(reversed(ds)), list(reversed(items))).report() == plan.report()  # order-free, deterministic
    # `u` takes back the latest decision still in force, walking back in time.
    index = DecisionIndex(ds)
    assert index.last().id == 11
    assert index.lookup("A", "dog/a_copy.png", lambda p, h: p) is None  # the decided copy is still at its path
    assert index.lookup("A", "cat/a.png", lambda p, h: p).id == 1
    assert index.lookup("E", "cat/moved.png", lambda p, h: None).id == 6  # renamed: the decided file is gone
    assert (
        DecisionIndex(ds + [_d(12, "undo", "x", "H"), _d(13, "undo", "x", "G"), _d(14, "undo", "x", "F1")]).last().id
        == 6
    )
    split = plan_replay(
        [_d(1, "relabel", "train/cat/x.png", "X", "dog")], [ReplayItem("train/cat/x.png", "X", "cat", "train")]
    )
    assert split.actions["train/cat/x.png"].dest == "train/dog/x.png"  # pre-split: the class part, not the subset
    bad = plan_replay(ds[:9], items)
    assert [(d.id, why) for d, why in bad.invalid] == [(9, "new label '_bad' starts with '_' or '.' (never a class)")]


def test_decision_log_is_append_only_and_durable(tmp_path):
    db = database_path(tmp_path)
    with DecisionLog(db) as log:
        d = log.append("relabel", "cat/a.png", label="cat", new_label="dog", view="issues", sha256="ab")
        assert (d.id, d.action, d.new_label) == (1, "relabel", "dog")
        with pytest.raises(ValueError, match="action must be one of"):
            log.append("delete", "cat/a.png")
        undone, row = log.undo_last(view="issues")
        assert (undone.id, row.action, row.path, row.sha256) == (1, "undo", "cat/a.png", "ab")
        assert log.undo_last() is None
        with contextlib.closing(sqlite3.connect(db)) as c:  # another process' view, while the log is open
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert c.execute("SELECT count(*) FROM decisions").fetchone()[0] == 2
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                c.execute("DELETE FROM decisions")
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                c.execute("UPDATE decisions SET action = 'keep'")
    assert [x.action for x in read_decisions(db)] == ["relabel", "undo"]
    assert read_decisions(tmp_path / "missing.sqlite") == []
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    from imgclf.errors import DataError

    with pytest.raises(DataError, match="cannot read the decisions database"):
        read_decisions(tmp_path / "junk.sqlite")


# ------------------------------------------------------------------ clean replays decisions
def test_clean_keeps_the_database_and_replays_it_idempotently(raw, cleaned):
    files = sorted(p.relative_to(cleaned).as_posix() for p in cleaned.glob("[0-9]/*.png"))
    rejected, relabelled, undone, conflict = files[0], files[1], files[2], "1/copy_of_a_seven.png"
    seven = sorted(p.relative_to(cleaned).as_posix() for p in cleaned.glob("7/*.png"))[0]
    assert (cleaned / conflict).is_file() and (cleaned / seven).is_file()  # a label conflict keeps both
    with DecisionLog(database_path(cleaned)) as log:
        for action, path, new in [("reject", rejected, None), ("relabel", relabelled, "5"), ("relabel", undone, "6")]:
            log.append(action, path, label=path.split("/")[0], new_label=new, view="test", sha256=_sha(cleaned / path))
        log.undo_last(view="test")  # takes back the relabel of `undone`
        log.append("relabel", conflict, label="1", new_label="7", view="test", sha256=_sha(cleaned / conflict))
    before = _rows(cleaned)
    out = _clean(raw, cleaned)
    assert (
        "review decisions replayed: 1 rejected (_rejected/manual/), 2 relabelled, 0 kept, 1 undone, 0 not found" in out
    )
    assert (cleaned / "_rejected" / "manual" / rejected).is_file() and not (cleaned / rejected).exists()
    assert (cleaned / "5" / Path(relabelled).name).is_file() and not (cleaned / relabelled).exists()
    assert (cleaned / undone).is_file() and not (cleaned / "6" / Path(undone).name).exists()
    # The copy relabelled to 7 now joins its twin's class: one kept, one set aside as a duplicate.
    report = json.loads((cleaned / "_reports" / "clean_report.json").read_text())
    assert report["label_conflicts"] == []
    assert (cleaned / "_rejected" / "duplicate" / conflict).is_file() != (
        cleaned / "7" / "copy_of_a_seven.png"
    ).is_file()
    dec = report["decisions"]
    assert {k: dec[k] for k in ("rows", "rejected", "relabelled", "kept", "undone", "not_found")} == {
        "rows": 5,
        "rejected": 1,
        "relabelled": 2,
        "kept": 0,
        "undone": 1,
        "not_found": 0,
    }
    assert {(f["file"], f["action"], f["to"]) for f in dec["files"]} == {
        (rejected, "reject", f"_rejected/manual/{rejected}"),
        (relabelled, "relabel", f"5/{Path(relabelled).name}"),
        (conflict, "relabel", "7/copy_of_a_seven.png"),
    }  # not `seven`, though it has the same bytes
    rejects = (cleaned / "_reports" / "rejects.csv").read_text()
    assert f"{rejected},manual,rejected in imgclf review" in rejects
    assert _rows(cleaned) == before  # read, kept, never rewritten
    tree = _tree(cleaned)
    _clean(raw, cleaned)  # idempotent
    assert _tree(cleaned) == tree
    assert _rows(cleaned) == before


def test_clean_accepts_a_folder_holding_only_decisions(raw, tmp_path):
    out = tmp_path / "fresh"
    first = sorted((raw / "3").iterdir())[0]
    with DecisionLog(database_path(out)) as log:
        log.append("reject", f"3/{first.name}", label="3", view="test", sha256=_sha(first))
    _clean(raw, out)
    assert (out / "_rejected" / "manual" / "3" / first.name).is_file()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "note.txt").write_text("mine")
    r = CliRunner().invoke(app, ["clean", str(raw), "--out", str(tmp_path / "other")])
    assert r.exit_code == 1 and "not a previous clean output" in r.output
    assert (tmp_path / "other" / "note.txt").read_text() == "mine"


# ------------------------------------------------------------------------- the command line
def test_help_is_fast_to_import():
    r = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "imgclf", "review", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr
    assert "--no-browser" in r.stdout and "[default: 8765]" in r.stdout and "[default: 127.0.0.1]" in r.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert not imported & {"starlette", "uvicorn", "fastapi", "tensorflow", "jinja2"}, imported


def test_start_refuses_bad_input_in_one_line(tmp_path, cleaned):
    for args, msg in [
        ([str(tmp_path / "nope")], "folder not found"),
        ([str(cleaned), "--audit", str(tmp_path)], "has no label_issues.csv"),
        ([str(cleaned), "--run", str(tmp_path)], "has no metrics.json"),
    ]:
        r = subprocess.run(
            [sys.executable, "-m", "imgclf", "review", *args, "--no-browser", "--port", "0"],
            capture_output=True,
            text=True,
            env={**os.environ, "IMGCLF_QUIET": "1"},
            timeout=120,
        )
        assert r.returncode == 1 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert r.stdout == ""


# ------------------------------------------------------------------------------ thumbnails
def test_thumbnails_are_small_files_as_they_are_or_a_jpeg_and_are_cached(tmp_path):
    from imgclf.review.data import NotFoundError
    from imgclf.review.thumbs import THUMB_SIDE, ThumbnailCache, make_thumbnail

    small, big, broken = tmp_path / "small.png", tmp_path / "big.png", tmp_path / "broken.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(small)
    Image.new("RGB", (900, 300), (10, 200, 10)).save(big)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 40)
    assert make_thumbnail(small, "PNG", small.stat().st_size, "small.png") == (small.read_bytes(), "image/png")
    data, media = make_thumbnail(big, "PNG", big.stat().st_size, "big.png")
    thumb = Image.open(io.BytesIO(data))
    assert media == "image/jpeg" and thumb.format == "JPEG" and thumb.size == (THUMB_SIDE, round(THUMB_SIDE / 3))
    with pytest.raises(NotFoundError, match=r"cannot show broken\.png"):
        make_thumbnail(broken, "PNG", broken.stat().st_size, "broken.png")
    cache = ThumbnailCache(size=1)
    first = cache.get(big, "PNG", big.stat(), "big.png")
    assert cache.get(big, "PNG", big.stat(), "big.png") is first  # a hit
    cache.get(small, "PNG", small.stat(), "small.png")  # evicts big (size 1)
    assert cache.get(big, "PNG", big.stat(), "big.png") is not first


def test_review_page_is_a_template_of_the_shared_environment():
    from imgclf.html import environment

    source = environment().loader.get_source(environment(), "review/page.html")[0]
    assert '{% extends "base.html" %}' in source  # one layout, one environment, autoescaped
    assert environment().autoescape is True


# ----------------------------------------------------------------------- safety over HTTP
def test_token_host_origin_and_paths(cleaned, tmp_path):
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(outside)
    (cleaned / "0" / "link_out.png").symlink_to(outside)
    (cleaned / "0" / "notes.png").write_text("not an image, whatever its name says")
    good = sorted(p.relative_to(cleaned).as_posix() for p in cleaned.glob("2/digits_*.png"))[0]
    srv = Server(cleaned, log=tmp_path / "server.log")
    try:
        port, tok = srv.port, srv.token
        T = {"X-Imgclf-Token": tok}
        origin = {"Origin": f"http://127.0.0.1:{port}"}
        json_ct = {"Content-Type": "application/json"}
        body = json.dumps({"path": good, "action": "reject", "view": "test"}).encode()
        responses = []

        def req(*a, **k):
            r = _http(port, *a, **k)
            responses.append(r)
            return r

        # token: none, wrong, in the URL (-> cookie + redirect), in the cookie, in the header
        assert req("GET", "/")[0] == 403
        assert req("GET", f"/thumb/{good}")[0] == 403
        assert req("GET", "/?token=wrong")[0] == 403
        status, headers, _ = req("GET", f"/?token={tok}")
        assert status == 303 and headers["location"] == "/" and f"={tok}" in headers["set-cookie"]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        cookie = {"Cookie": headers["set-cookie"].split(";")[0]}
        status, headers, _ = req("GET", f"//evil.example/?token={tok}")
        assert status == 303 and headers["location"] == "/evil.example/"  # never a redirect to another host
        status, headers, page = req("GET", "/", headers=cookie)
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert (
            f'data-path="{good}"'.encode() in page
            and b"script-src 'nonce-" in headers["content-security-policy"].encode()
        )
        assert b'data-path="0/link_out.png"' in page  # listed (it is in a class folder) ...
        assert req("GET", "/", headers=cookie, host=f"localhost:{port}")[0] == 200
        # Host: DNS rebinding
        assert req("GET", "/", headers=T, host=f"evil.example:{port}")[0] == 403
        assert req("GET", "/", headers=T, host=f"127.0.0.1:{port + 1}")[0] == 403
        # POST: token header AND same-origin Origin, JSON; nothing saved by a refused request
        assert req("POST", "/api/decide", headers={**T, **json_ct}, body=body)[0] == 403
        assert (
            req("POST", "/api/decide", headers={**T, **json_ct, "Origin": "http://evil.example"}, body=body)[0] == 403
        )
        assert req("POST", "/api/decide", headers={**T, **json_ct, "Origin": "null"}, body=body)[0] == 403
        assert req("POST", "/api/decide", headers={**cookie, **origin, **json_ct}, body=body)[0] == 403
        assert (
            req("POST", "/api/decide", headers={**T, **origin, **json_ct}, body=body, host=f"evil.example:{port}")[0]
            == 403
        )
        assert (
            req("POST", "/api/undo", headers={**T, **json_ct, "Origin": f"http://evil.example:{port}"}, body=b"{}")[0]
            == 403
        )
        assert not database_path(cleaned).exists() or _rows(cleaned) == []
        assert req("GET", "/api/decide", headers=T)[0] == 405
        assert req("PUT", "/api/decide", headers={**T, **origin, **json_ct}, body=body)[0] == 405
        # bad input: clear 4xx
        P = {**T, **origin}
        assert req("POST", "/api/decide", headers={**P, "Content-Type": "text/plain"}, body=body)[0] == 415
        assert req("POST", "/api/decide", headers={**P, **json_ct}, body=b"{not json")[0] == 400
        status, _, msg = req(
            "POST",
            "/api/decide",
            headers={**P, **json_ct},
            body=json.dumps({"path": good, "action": "delete"}).encode(),
        )
        assert status == 400 and b"action" in msg
        status, _, msg = req(
            "POST",
            "/api/decide",
            headers={**P, **json_ct},
            body=json.dumps({"path": good, "action": "relabel", "new_label": "cat"}).encode(),
        )
        assert status == 400 and b"unknown class 'cat'" in msg
        assert req("POST", "/api/decide", headers={**P, **json_ct}, body=b"x" * 70_000)[0] in (400, 413)
        assert req("GET", "/issues?page=abc", headers=T)[0] == 400
        assert req("GET", "/class/nope", headers=T)[0] == 404
        # paths: outside the folder, absolute, symlink out, not an image -> 404
        rel_out = os.path.relpath(outside, cleaned)
        for path in (
            f"/image/{rel_out}",
            f"/image/%2e%2e/{outside.name}",
            f"/image/{outside}",
            f"/image//{outside}",
            "/image/0/link_out.png",
            "/image/0/notes.png",
            "/image/_reports/clean_report.json",
            f"/thumb/{rel_out}",
            "/thumb/0/link_out.png",
            "/image/0/missing.png",
            "/image/",
        ):
            assert req("GET", path, headers=T)[0] == 404, path
        for bad in (rel_out, str(outside), "0/link_out.png", "0/notes.png"):
            status, _, _ = req(
                "POST",
                "/api/decide",
                headers={**P, **json_ct},
                body=json.dumps({"path": bad, "action": "reject"}).encode(),
            )
            assert status == 404, bad
        assert not database_path(cleaned).exists() or _rows(cleaned) == []
        status, headers, data = req("GET", f"/image/{good}", headers=T)
        assert status == 200 and headers["content-type"] == "image/png" and data == (cleaned / good).read_bytes()
        assert headers["x-content-type-options"] == "nosniff"
        status, headers, _ = req("GET", f"/thumb/{good}", headers=T)
        assert status == 200 and headers["content-type"].startswith("image/")
        # a good request is saved before it answers
        status, _, data = req("POST", "/api/decide", headers={**P, **json_ct}, body=body)
        assert status == 200 and json.loads(data)["decision"]["path"] == good
        assert _rows(cleaned) == [("reject", good, "2", None, "test", _sha(cleaned / good))]
        assert all(r[0] < 500 and b"Traceback" not in r[2] for r in responses)
    finally:
        rest = srv.stop()
    assert rest == ""  # exactly one line on stdout


# --------------------------------------------------------------------------- the browser
def _paths(page) -> list[str]:
    return page.locator(".tile[data-path]").evaluate_all("els => els.map(e => e.dataset.path)")


def _tile(page, path: str):
    return page.locator(f'.tile[data-path="{path}"]')


@pytest.mark.slow
def test_keyboard_flow_is_saved_shown_after_restart_and_applied_by_clean(browser, raw, cleaned, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    log = tmp_path / "server.log"
    srv = Server(cleaned, log=log)
    page = browser.new_page()
    try:
        page.goto(srv.url)
        assert page.url == f"{srv.base}/"  # the token moved from the address bar to a cookie
        body = page.locator("body")
        paths = _paths(page)
        assert paths[:4] == sorted(p.relative_to(cleaned).as_posix() for p in cleaned.glob("0/*.png"))[:4]
        legend = page.locator("#legend button").all_inner_texts()
        assert [t.split()[-1] for t in legend] == [str(i) for i in range(10)]  # classes in sorted order
        expect(body).to_have_attribute("data-focused", paths[0])

        page.keyboard.press("j")
        expect(body).to_have_attribute("data-focused", paths[1])
        assert not database_path(cleaned).exists() or _rows(cleaned) == []

        page.keyboard.press("x")
        expect(body).to_have_attribute("data-saved-count", "1")
        assert _rows(cleaned) == [("reject", paths[1], "0", None, "classes", _sha(cleaned / paths[1]))]
        expect(_tile(page, paths[1])).to_have_attribute("data-state", "reject")
        expect(_tile(page, paths[1]).locator(".badge")).to_have_text("✕ rejected · saved")

        page.keyboard.press("j")
        expect(body).to_have_attribute("data-focused", paths[2])
        assert len(_rows(cleaned)) == 1

        page.keyboard.press("2")  # the 2nd class of the legend: "1"
        expect(body).to_have_attribute("data-saved-count", "2")
        assert _rows(cleaned)[-1] == ("relabel", paths[2], "0", "1", "classes", _sha(cleaned / paths[2]))
        expect(_tile(page, paths[2]).locator(".badge")).to_have_text("→ 1 · saved")

        page.keyboard.press("u")
        expect(body).to_have_attribute("data-saved-count", "3")
        assert _rows(cleaned)[-1] == ("undo", paths[2], "0", "1", "classes", _sha(cleaned / paths[2]))
        expect(_tile(page, paths[2])).to_have_attribute("data-state", "")
        expect(_tile(page, paths[1])).to_have_attribute("data-state", "reject")  # only the last one undone

        page.keyboard.press("j")
        page.keyboard.press("3")  # the 3rd class: "2"
        expect(body).to_have_attribute("data-saved-count", "4")
        assert _rows(cleaned)[-1] == ("relabel", paths[3], "0", "2", "classes", _sha(cleaned / paths[3]))
    finally:
        page.close()
        srv.stop(kill=True)  # SIGKILL: what the page showed as saved must survive

    srv = Server(cleaned, log=log)
    page = browser.new_page()
    try:
        page.goto(srv.url)
        expect(_tile(page, paths[1])).to_have_attribute("data-state", "reject")
        expect(_tile(page, paths[1]).locator(".badge")).to_have_text("✕ rejected")
        expect(_tile(page, paths[2])).to_have_attribute("data-state", "")
        expect(_tile(page, paths[3])).to_have_attribute("data-new-label", "2")
        expect(_tile(page, paths[3]).locator(".badge")).to_have_text("→ 2")
    finally:
        page.close()
        srv.stop()

    rows = _rows(cleaned)
    out = _clean(raw, cleaned)
    assert (
        "review decisions replayed: 1 rejected (_rejected/manual/), 1 relabelled, 0 kept, 1 undone, 0 not found" in out
    )
    assert (cleaned / "_rejected" / "manual" / paths[1]).is_file() and not (cleaned / paths[1]).exists()
    moved = cleaned / "2" / Path(paths[3]).name
    assert moved.is_file() and not (cleaned / paths[3]).exists()
    assert (cleaned / paths[2]).is_file()  # undone: not applied
    assert _sha(moved) == rows[-1][5]
    tree = _tree(cleaned)
    _clean(raw, cleaned)
    assert _tree(cleaned) == tree and _rows(cleaned) == rows

    srv = Server(cleaned, log=log)
    page = browser.new_page()
    try:
        page.goto(srv.url)
        page.goto(f"{srv.base}/class/2")
        expect(_tile(page, f"2/{moved.name}")).to_have_attribute("data-state", "relabel")
        expect(_tile(page, f"2/{moved.name}").locator(".badge")).to_have_text("→ 2 · applied")
        page.goto(f"{srv.base}/decisions")
        expect(_tile(page, f"_rejected/manual/{paths[1]}")).to_have_attribute("data-state", "reject")
        expect(_tile(page, f"_rejected/manual/{paths[1]}").locator(".badge")).to_have_text("✕ rejected · applied")
        expect(page.locator("table.log tr")).to_have_count(len(rows) + 1)
    finally:
        page.close()
        srv.stop()


VIEWS = {
    "classes": "/",
    "class": "/class/7",
    "issues": "/issues",
    "outliers": "/outliers",
    "duplicates": "/duplicates",
    "conflicts": "/conflicts",
    "errors": "/errors",
    "blurry": "/blurry",
    "decisions": "/decisions",
}


@pytest.mark.slow
def test_every_view_in_the_browser_and_the_mouse(browser, cleaned, reports, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    shots = os.environ.get("IMGCLF_REVIEW_SCREENSHOTS")
    srv = Server(cleaned, "--audit", str(reports["audit"]), "--run", str(reports["run"]), log=tmp_path / "server.log")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(srv.url)
        # mouse: click a tile's reject button, a legend class, the undo button
        issues_first = reports["issues"][0]
        page.goto(f"{srv.base}/issues")
        assert _paths(page) == [reports["issues"][0], reports["issues"][2], reports["issues"][1]]  # worst first
        tile = _tile(page, issues_first)
        expect(tile.locator(".label b")).to_have_text("8")
        tile.locator("[data-act=reject]").click()
        expect(page.locator("body")).to_have_attribute("data-saved-count", "1")
        expect(page.locator("#legend button.suggest")).to_have_text("9 8")  # the suggestion, marked
        page.locator('#legend button[data-class="8"]').click()
        expect(page.locator("body")).to_have_attribute("data-saved-count", "2")
        expect(tile).to_have_attribute("data-new-label", "8")
        assert [r[:4] for r in _rows(cleaned)] == [
            ("reject", issues_first, "3", None),
            ("relabel", issues_first, "3", "8"),
        ]
        assert {r[4] for r in _rows(cleaned)} == {"issues"}
        page.locator("#undo").click()
        expect(page.locator("body")).to_have_attribute("data-saved-count", "3")
        expect(tile).to_have_attribute("data-state", "reject")  # back to the decision before
        for name, route in VIEWS.items():
            page.goto(srv.base + route)
            expect(page.locator("h1")).not_to_have_text("Cannot show this view")
            n = page.locator(".tile[data-path]").count()
            assert n > 0, name
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=False)
        page.goto(srv.base + "/errors")
        expect(page.locator(".tile.missing")).to_have_count(1)  # gone.png: listed, not shown
        assert len(_paths(page)) == 2
        page.goto(srv.base + "/conflicts")
        seven = sorted(p.relative_to(cleaned).as_posix() for p in cleaned.glob("7/*.png"))[0]
        assert set(_paths(page)) == {"1/copy_of_a_seven.png", seven}
        saved = int(page.locator("body").get_attribute("data-saved-count"))
        _tile(page, "1/copy_of_a_seven.png").locator("[data-act=reject]").click()
        expect(page.locator("body")).to_have_attribute("data-saved-count", str(saved + 1))
        expect(_tile(page, "1/copy_of_a_seven.png")).to_have_attribute("data-state", "reject")
        expect(_tile(page, seven)).to_have_attribute("data-state", "")  # same bytes, another file
        page.reload()
        expect(_tile(page, "1/copy_of_a_seven.png")).to_have_attribute("data-state", "reject")
        expect(_tile(page, seven)).to_have_attribute("data-state", "")
        page.goto(srv.base + "/duplicates")
        assert len(_paths(page)) >= 2
        assert problems == []  # no script error, no CSP violation, no failed image
        (reports["audit"] / "label_issues.csv").write_text("file,label\nx,y\n")  # a broken report: said, not a 500
        page.goto(srv.base + "/issues")
        expect(page.locator(".message")).to_contain_text("lacks column(s) path, given_label, suggested_label")
    finally:
        page.close()
        srv.stop()
