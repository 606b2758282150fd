"""Near-duplicate detection on real pictures: imgclf's verified detector vs hash-only peers.

Builds the benchmark of `dedupe_set.py` (Debian wallpapers at their own resolutions, oxygen
icons at 16-256 px, and resized / re-encoded / cropped / padded / bordered / watermarked /
brightened / contrast-changed / mirrored copies; hard negatives: light/dark variants of one
design, colour and emblem variants of one icon family) into `--work`, then runs, on the same
files, side by side:

- `imgclf hash-only`: what `clean` did before the verified detector -- phash 256 bits
  (`hash_size=16`), Hamming distance <= 16, plus exact pixel duplicates;
- `imgclf verified`: `imgclf.clean.similarity.find_duplicate_pairs` with its defaults (what
  `clean` and `split` now call);
- `imagehash.phash`: 64 bits, Hamming distance <= 10;
- imagededup `PHash`, `DHash`, `WHash` with their default `max_distance_threshold` (10), run
  through `--imagededup-python` (a separate venv: imagededup needs torch, which imgclf does
  not depend on), or skipped with a message when that interpreter is missing.

Images are decoded for the imgclf and imagehash rows with `imgclf.images.open_image(path,
draft=256)`, as `clean` does (transparency onto white); imagededup decodes them itself.

Figures (pairs of files): a *true pair* is two files of one duplicate set. Pairs with a `flip`
copy are left out of precision / recall (a mirrored copy is a duplicate only with
`flips=True`; the flip row reports them). "goal" restricts to the kinds of issue 12's goal
(every copy kind but flip, the package's own sizes, icons from 32 px up). Per-kind columns
are the recall of (anchor, copy) pairs. "split" is the share of true duplicate sets whose
files end up in more than one group (connected components of the found pairs).

With `--fashion`, also the cost on the 70,000 Fashion-MNIST PNGs (`imgclf datasets
fashion-mnist --out DIR` is run when DIR is empty): decode as clean does, then the hash-only
path (phash-256 + digest, search within 16 bits) and the verified detector (signature +
two-stage search), timed in the same run; with `--old-src` also the whole `imgclf clean` of
that source tree (e.g. a `git worktree` of the previous commit, run with `PYTHONPATH`) and of
this one on the same folder, one after the other in the same run.

    .venv/bin/python scripts/bench/bench_dedupe.py --work /tmp/dedupe-bench \\
        --imagededup-python /tmp/dedupe-venv/bin/python --fashion /tmp/fm --old-src /tmp/old12/src
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedupe_set import COLOUR_KINDS, FRAME_KINDS, GRADE_FAMILIES, ICON_SIZES, build

from imgclf.clean import similarity as sim
from imgclf.clean.similarity import connected_components, hamming_pairs, pack_bits
from imgclf.clean.similarity.hashers import get_hasher, pixel_digest
from imgclf.images import ORIGINAL_SIZE_KEY, open_image

#: (radius, max_residual) settings of `--grid`.
GRID = ((8, 4.0), (8, 4.5), (8, 5.0), (8, 5.5), (8, 6.0), (6, 5.0), (10, 5.0))

GOAL_KINDS = (
    "resize",
    "jpeg_q60",
    "crop",
    "pad",
    "border",
    "watermark",
    "bright+20",
    "bright-20",
    "contrast+20",
    "contrast-20",
    "package",
    "icon_32",
    "icon_48",
    "icon_64",
    "icon_128",
)
#: Issue 30's kinds: colour changes, frames and captions (the solid border is issue 12's).
NEW_KINDS: tuple[str, ...] = COLOUR_KINDS + tuple(k for k in FRAME_KINDS if k not in GOAL_KINDS)
GOAL_KINDS: tuple[str, ...] = GOAL_KINDS + NEW_KINDS  # type: ignore[no-redef]
SHOW_KINDS = GOAL_KINDS + ("icon_22", "icon_16", "package_aspect")

IMAGEDEDUP_SCRIPT = r"""
import json, sys, logging, types
logging.disable(logging.WARNING)
try:
    import torchvision  # noqa: F401
except Exception:  # a CUDA torchvision wheel beside the CPU torch: its ops do not load
    # the hash methods never use the CNN module; stand in for it so that they import
    stub = types.ModuleType("imagededup.utils.models")
    stub.CustomModel = stub.MobilenetV3 = object
    stub.DEFAULT_MODEL_NAME = "unavailable"
    sys.modules["imagededup.utils.models"] = stub
from imagededup.methods import PHash, DHash, WHash
out = {}
for name, cls in (("PHash", PHash), ("DHash", DHash), ("WHash", WHash)):
    m = cls(verbose=False)
    enc = m.encode_images(image_dir=sys.argv[1], num_enc_workers=1)
    dup = m.find_duplicates(encoding_map=enc, num_dist_workers=1, scores=True)
    out[name] = sorted({tuple(sorted((a, b))) + (int(d),) for a, bs in dup.items() for b, d in bs})
json.dump(out, open(sys.argv[2], "w"))
"""


def _pairs_from_names(pairs, index):
    i = np.array([index[a] for a, b, _ in pairs], dtype=np.int64)
    j = np.array([index[b] for a, b, _ in pairs], dtype=np.int64)
    d = np.array([d for _, _, d in pairs], dtype=np.int64)
    return np.minimum(i, j), np.maximum(i, j), d


def at_precision(items, i, j, d, min_precision: float = 0.99, on: str = "P_goal", best_by: str = "R_goal"):
    """The threshold on distances `d` that is best by `best_by` at `on` >= min_precision.

    A hash peer's default threshold (10 bits) buys recall with precision; this is the same peer
    tuned on the answers to the precision the goal asks for (an upper bound of what it can do
    there): the most goal recall (`best_by="R_goal"`) or the fewest sets split over several
    groups (`best_by="split"`). Returns `(threshold, figures)`, or `(None, None)` if no
    threshold reaches the precision.
    """
    best: tuple[int | None, dict | None] = (None, None)
    for t in np.unique(d):
        keep = d <= t
        e = evaluate(items, i[keep], j[keep])
        if e[on] < min_precision:
            continue
        better = best[1] is None or (
            e["split"] < best[1]["split"] if best_by == "split" else e[best_by] > best[1][best_by]
        )
        if better:
            best = (int(t), e)
    return best


def current_pairs(imgs):
    hasher = get_hasher("phash", 16)
    codes = np.stack([hasher.hash_image(im) for im in imgs])
    i, j, _ = hamming_pairs(codes, hasher.default_threshold(), bits=hasher.bits)
    by: dict[str, int] = {}
    ei: list[int] = []
    ej: list[int] = []
    for k, im in enumerate(imgs):
        first = by.setdefault(pixel_digest(im), k)
        if first != k:
            ei.append(first)
            ej.append(k)
    i = np.concatenate([i, ei]).astype(np.int64)
    j = np.concatenate([j, ej]).astype(np.int64)
    return np.minimum(i, j), np.maximum(i, j)


def imagehash_pairs(imgs):
    import imagehash

    codes = pack_bits(np.stack([imagehash.phash(im).hash.reshape(-1) for im in imgs]))
    return hamming_pairs(codes, 10, bits=64)


def evaluate(items, i, j):
    """Returns a dict of figures for found pairs (i, j) over `items`."""
    n = len(items)
    sets = np.array([it.set for it in items])
    kinds = np.array([it.kind for it in items])
    fam = np.array([it.family for it in items])
    flip = kinds == "flip"
    goal = np.isin(kinds, GOAL_KINDS + ("anchor",))
    key = np.unique(np.minimum(i, j) * n + np.maximum(i, j))
    i, j = key // n, key % n
    keep = ~flip[i] & ~flip[j]
    flip_found = {(int(a), int(b)) for a, b in zip(i[~keep], j[~keep])}
    i, j = i[keep], j[keep]
    # pairs between two colour grades of one photo (GRADE_FAMILIES): reported, not scored
    grade = (sets[i] != sets[j]) & (fam[i] == fam[j]) & np.isin(fam[i], GRADE_FAMILIES)
    grade_pairs = int(grade.sum())
    grade_sets = sorted({tuple(sorted((sets[a], sets[b]))) for a, b in zip(i[grade], j[grade])})
    i, j = i[~grade], j[~grade]
    same = sets[i] == sets[j]
    counts = Counter(sets[~flip])
    n_true = sum(c * (c - 1) // 2 for c in counts.values())
    gcounts = Counter(sets[goal])
    n_true_goal = sum(c * (c - 1) // 2 for c in gcounts.values())
    g = goal[i] & goal[j]
    out: dict = {
        "pairs": len(i),
        "P": same.sum() / max(1, len(i)),
        "R": same.sum() / n_true,
        "P_goal": (same & g).sum() / max(1, g.sum()),
        "R_goal": (same & g).sum() / n_true_goal,
        "fp": int((~same).sum()),
        "fp_hard": int((~same & (fam[i] == fam[j]) & (fam[i] != "")).sum()),
        "grade_pairs": grade_pairs,
        "grade_sets": len(grade_sets),
    }
    anchor = {s: k for k, (s, kd) in enumerate(zip(sets, kinds)) if kd == "anchor"}
    found = set(zip(i.tolist(), j.tolist()))
    for kd in SHOW_KINDS + ("flip",):
        idx = np.flatnonzero(kinds == kd)
        if not len(idx):
            continue
        hits = 0
        for k in idx:
            a = anchor[sets[k]]
            pair = (min(a, k), max(a, k))
            hits += pair in (flip_found if kd == "flip" else found)
        out[kd] = hits / len(idx)
    out.update(_split(n, sets, flip, goal, counts, i, j))
    return out


def _split(n, sets, flip, goal, counts, i, j):
    """Sets split over several groups (flip copies left out), and groups merging sets."""
    out: dict = {}
    nodes = np.flatnonzero(~flip)
    remap = -np.ones(n, dtype=np.int64)
    remap[nodes] = np.arange(len(nodes))
    comp = connected_components(len(nodes), remap[i], remap[j])
    for label, mask in (("split", ~flip), ("split_goal", goal)):
        per_set: dict[str, set] = {}
        size: Counter = Counter()
        for k in np.flatnonzero(mask):
            per_set.setdefault(sets[k], set()).add(int(comp[remap[k]]))
            size[sets[k]] += 1
        multi = [s for s in per_set if counts[s] > 1 and size[s] > 1]
        n_split = sum(len(per_set[s]) > 1 for s in multi)
        out[label] = n_split / max(1, len(multi))
        out[label + "_n"] = f"{n_split}/{len(multi)}"
    members: dict[int, set] = {}
    for k in nodes:
        members.setdefault(int(comp[remap[k]]), set()).add(sets[k])
    out["merged_groups"] = sum(len(v) > 1 for v in members.values())
    return out


def print_table(rows):
    cols = [
        ("pairs", "pairs", "{:d}"),
        ("P", "P", "{:.3f}"),
        ("R", "R", "{:.3f}"),
        ("P_goal", "P goal", "{:.3f}"),
        ("R_goal", "R goal", "{:.3f}"),
        ("split", "split", "{:.3f}"),
        ("split_n", "sets split", "{}"),
        ("split_goal", "split goal", "{:.3f}"),
        ("fp", "false pairs", "{:d}"),
        ("fp_hard", "of them hard neg.", "{:d}"),
        ("merged_groups", "merging groups", "{:d}"),
        ("grade_pairs", "grade pairs", "{:d}"),
    ]
    print("| method | " + " | ".join(c[1] for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, r in rows:
        print(f"| {name} | " + " | ".join(c[2].format(r[c[0]]) for c in cols) + " |")
    old = [k for k in SHOW_KINDS + ("flip",) if k in rows[0][1] and k not in NEW_KINDS]
    new = [k for k in NEW_KINDS if k in rows[0][1]]
    for title, kinds in (("issue 12's kinds", old), ("issue 30's kinds", new)):
        print(f"\nRecall of (anchor, copy) pairs per copy kind, {title}:\n")
        print("| method | " + " | ".join(kinds) + " |")
        print("|---" * (len(kinds) + 1) + "|")
        for name, r in rows:
            print(f"| {name} | " + " | ".join(f"{r[k]:.2f}" for k in kinds) + " |")


def _imagededup_rows(items, img_dir: Path, py: str | None) -> list:
    """imagededup's PHash, DHash and WHash at their defaults, run by `py` (a separate venv):
    `[(name, (i, j, distance))]`, or `[]` with a message when `py` is missing."""
    if not (py and Path(py).exists()):
        print(
            f"imagededup skipped: no interpreter at --imagededup-python={py!r} "
            "(python3 -m venv /tmp/dedupe-venv && /tmp/dedupe-venv/bin/pip install imagededup)"
        )
        return []
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(IMAGEDEDUP_SCRIPT)
        out = Path(tmp) / "out.json"
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        subprocess.run([py, str(script), str(img_dir), str(out)], check=True, env=env)
        res = json.loads(out.read_text())
    print(f"imagededup ran in {time.perf_counter() - t:.0f} s", flush=True)
    index = {it.file: k for k, it in enumerate(items)}
    return [(f"imagededup {name}", _pairs_from_names(res[name], index)) for name in ("PHash", "DHash", "WHash")]


def _grid_table(items, sigs) -> None:
    """Prints the figures of the settings of `GRID` around the defaults (same signatures)."""
    print("\nSettings around the defaults (same signatures; P / R over the goal kinds):\n")
    cols = ("crop", "border", "watermark", "bright+20", "hue", "frame", "caption_top", "icon_64", "icon_128")
    print("| radius | max_residual | pairs | P goal | R goal | false pairs | " + " | ".join(cols) + " |")
    print("|---" * (6 + len(cols)) + "|")
    for radius, res in GRID:
        g = sim.find_duplicate_pairs(sigs, radius=radius, max_residual=res)
        e = evaluate(items, g.i, g.j)
        head = f"| {radius} | {res:g} | {e['pairs']} | {e['P_goal']:.3f} | {e['R_goal']:.3f} | {e['fp']} | "
        print(head + " | ".join(f"{e[c]:.2f}" for c in cols) + " |", flush=True)


def _peer_tables(items, rows, tuned) -> None:
    """Prints the hash peers tuned on the answers: at goal precision >= 0.99 (most goal
    recall), and at pair precision >= 0.9 (fewest sets split), each beside imgclf's defaults."""
    for title, kw, label in (
        (
            "at the goal's precision: each one's threshold (<= 10 bits) with the most goal recall at P goal >= 0.99",
            {},
            "(tuned)",
        ),
        (
            "at pair precision >= 0.9 (issue 30's comparison of split sets): each one's threshold "
            "(<= 10 bits) with the fewest sets split at P >= 0.9",
            {"min_precision": 0.9, "on": "P", "best_by": "split"},
            "(fewest split at P >= 0.9)",
        ),
    ):
        print(f"\nThe hash peers {title}, chosen on the answers:\n")
        peer_rows = []
        for name, (i, j, d) in tuned:
            t, e = at_precision(items, i, j, d, **kw)  # type: ignore[arg-type]
            if e is None:
                print(f"- {name}: no threshold reaches the precision")
            else:
                peer_rows.append((f"{name} <= {t} {label}", e))
        print()
        print_table(rows[1:2] + peer_rows)


def bench_set(args) -> None:
    """The benchmark of `dedupe_set.py`: imgclf's detectors and the hash peers side by side."""
    work = Path(args.work)
    t = time.perf_counter()
    items = build(work, log=lambda m: print(m, flush=True))
    img_dir = work / "images"
    kinds = Counter(it.kind for it in items)
    print(
        f"benchmark: {len(items)} files, {len({it.set for it in items})} duplicate sets "
        f"({time.perf_counter() - t:.0f} s to build or load); kinds: {dict(sorted(kinds.items()))}",
        flush=True,
    )
    t = time.perf_counter()
    imgs = [open_image(img_dir / it.file, draft=256) for it in items]
    print(f"decoded in {time.perf_counter() - t:.1f} s", flush=True)
    rows = []
    t = time.perf_counter()
    rows.append(("imgclf hash-only (phash-256 <= 16 + exact)", evaluate(items, *current_pairs(imgs))))
    t_cur = time.perf_counter() - t
    t = time.perf_counter()
    sigs = sim.stack([sim.signature(im, size=im.info[ORIGINAL_SIZE_KEY]) for im in imgs])
    t_sig = time.perf_counter() - t
    t = time.perf_counter()
    p = sim.find_duplicate_pairs(sigs)
    t_find = time.perf_counter() - t
    rows.append(("imgclf verified (defaults)", evaluate(items, p.i, p.j)))
    pf = sim.find_duplicate_pairs(sigs, flips=True)
    rows.append(("imgclf verified, flips=True", evaluate(items, pf.i, pf.j)))
    ih = imagehash_pairs(imgs)
    rows.append(("imagehash.phash 64-bit <= 10", evaluate(items, *ih[:2])))
    tuned = [("imagehash.phash 64-bit", ih), *_imagededup_rows(items, img_dir, args.imagededup_python)]
    rows += [(f"{name} (<= 10)", evaluate(items, *found[:2])) for name, found in tuned[1:]]
    if args.grid:
        _grid_table(items, sigs)
    print(
        f"\nimgclf verified: signatures {t_sig:.1f} s ({t_sig / len(items) * 1e3:.1f} ms per image, "
        f"{sigs.nbytes / len(items):.0f} bytes each), find_duplicate_pairs {t_find:.1f} s; "
        f"imgclf hash-only hash + search {t_cur:.1f} s\n"
    )
    print_table(rows)
    _peer_tables(items, rows, tuned)
    if args.pairs_out:
        np.savez(args.pairs_out, i=p.i, j=p.j, residual=p.residual, kind=p.kind, aligned=p.aligned)
    if args.sheet_set:
        set_sheet(items, img_dir, p, Path(args.sheet_set))


def bench_fashion(args) -> None:
    root = Path(args.fashion)
    if not root.is_dir() or not any(root.iterdir()):
        subprocess.run([sys.executable, "-m", "imgclf", "datasets", "fashion-mnist", "--out", str(root)], check=True)
    files = sorted(p for p in root.rglob("*.png"))[: args.fashion_n]
    n = len(files)
    print(f"\nFashion-MNIST cost: {n} PNGs under {root}, one thread", flush=True)
    hasher = get_hasher("phash", 16)
    t_dec = t_old = t_new = 0.0
    codes, digests, sigs = [], [], []
    for f in files:
        t = time.perf_counter()
        img = open_image(f, draft=max(hasher.draft_size, 256))
        t1 = time.perf_counter()
        codes.append(hasher.hash_image(img))
        digests.append(pixel_digest(img))
        t2 = time.perf_counter()
        sigs.append(sim.signature(img, size=img.info[ORIGINAL_SIZE_KEY]))
        t3 = time.perf_counter()
        t_dec += t1 - t
        t_old += t2 - t1
        t_new += t3 - t2
    t = time.perf_counter()
    i, _, _ = hamming_pairs(np.stack(codes), hasher.default_threshold(), bits=hasher.bits)
    t_old_search = time.perf_counter() - t
    t = time.perf_counter()
    stacked = sim.stack(sigs)
    p = sim.find_duplicate_pairs(stacked)
    t_new_search = time.perf_counter() - t
    if args.grid:
        print("| radius | max_residual | Fashion-MNIST pairs | seconds |\n|---|---|---|---|")
        for radius, res in GRID:
            t = time.perf_counter()
            g = sim.find_duplicate_pairs(stacked, radius=radius, max_residual=res)
            print(f"| {radius} | {res:g} | {len(g)} | {time.perf_counter() - t:.1f} |", flush=True)
    ci, _ = sim.candidate_pairs(stacked, None, sim.DEFAULT_RADIUS)
    old = t_old + t_old_search
    new = t_new + t_new_search
    print(
        f"| step | today (phash-256 <= 16) | verified detector |\n|---|---|---|\n"
        f"| decode (open_image, shared) | {t_dec:.1f} s | {t_dec:.1f} s |\n"
        f"| per-image hash / signature | {t_old:.1f} s | {t_new:.1f} s |\n"
        f"| search (+ verify) | {t_old_search:.1f} s ({len(i)} pairs) | {t_new_search:.1f} s "
        f"({len(ci)} candidates, {int((p.kind == 'near').sum())} near + "
        f"{int((p.kind == 'exact').sum())} exact pairs) |\n"
        f"| dedupe total | {old:.1f} s | {new:.1f} s ({new / old:.2f}x) |\n"
        f"| decode + dedupe | {t_dec + old:.1f} s | {t_dec + new:.1f} s ({(t_dec + new) / (t_dec + old):.2f}x) |\n"
        f"memory: {stacked.nbytes / n:.0f} bytes per signature ({stacked.nbytes / 1e6:.1f} MB for {n}) vs "
        f"{np.stack(codes).nbytes / n:.0f} bytes per phash-256 code",
        flush=True,
    )
    if args.sheet:
        pair_sheet(files, p, Path(args.sheet))
    if args.old_src:
        clean_cost(root, Path(args.old_src), args.clean_workers, args.clean_repeats)


def hardest_pairs(items, pairs, n_found: int = 12, n_missed: int = 18):
    """The benchmark's hardest cases for the detector's answer `pairs`: the true pairs of issue
    30's kinds found with the largest residual, the (anchor, copy) pairs of the goal kinds (icons
    left out) that were missed, and every false pair (grade pairs left out). Each a list of
    `(a, b, label)`."""
    sets = [it.set for it in items]
    kinds = [it.kind for it in items]
    anchor = {s: k for k, (s, kd) in enumerate(zip(sets, kinds)) if kd == "anchor"}
    found = {}
    for a, b, r in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.residual.tolist()):
        found[(a, b)] = r
    hard, missed, false = [], [], []
    for (a, b), r in found.items():
        if sets[a] == sets[b]:
            kd = kinds[b] if kinds[a] == "anchor" else kinds[a]
            if kd in NEW_KINDS and "anchor" in (kinds[a], kinds[b]):
                hard.append((r, a, b, f"{kd} {r:.1f}"))
        elif not (items[a].family == items[b].family and items[a].family in GRADE_FAMILIES):
            false.append((r, a, b, f"FALSE {r:.1f}"))
    for k, kd in enumerate(kinds):
        if kd in GOAL_KINDS and not kd.startswith("icon"):
            a = anchor[sets[k]]
            if (min(a, k), max(a, k)) not in found:
                missed.append((NEW_KINDS.index(kd) if kd in NEW_KINDS else -1, a, k, f"missed {kd}"))
    hard = sorted(hard, reverse=True)[:n_found]
    missed = sorted(missed, reverse=True)[:n_missed]
    return [(a, b, t) for _, a, b, t in hard], [(a, b, t) for _, a, b, t in missed], [(a, b, t) for _, a, b, t in false]


def set_sheet(items, img_dir: Path, pairs, path: Path, cell: int = 112, per_row: int = 6) -> None:
    """Writes a contact sheet of `hardest_pairs` (each pair side by side, fitted into `cell` px
    squares, with its label), to look at by eye."""
    from PIL import Image, ImageDraw

    hard, missed, false = hardest_pairs(items, pairs)
    rows = (len(hard) + per_row - 1) // per_row + (len(missed) + per_row - 1) // per_row
    rows += (len(false) + per_row - 1) // per_row
    sheet = Image.new("RGB", (per_row * (2 * cell + 10), max(1, rows) * (cell + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    r = 0
    for group in (hard, missed, false):
        for k, (a, b, label) in enumerate(group):
            rr, c = divmod(k, per_row)
            x0, y0 = c * (2 * cell + 10), (r + rr) * (cell + 14)
            for m, f in enumerate((a, b)):
                im = open_image(img_dir / items[f].file, draft=256)
                im.thumbnail((cell, cell))
                sheet.paste(im, (x0 + m * (cell + 2), y0))
            draw.text((x0, y0 + cell), f"{label} {items[a].set[:22]}", fill="black")
        r += (len(group) + per_row - 1) // per_row
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print(f"contact sheet: {len(hard)} hardest found, {len(missed)} missed, {len(false)} false pairs: {path}")


def pair_sheet(files: list[Path], pairs, path: Path, n: int = 60, seed: int = 0) -> None:
    """Writes a contact sheet of `n` random verified pairs (nearest-neighbour enlarged x3, with
    their residual and classes), to look at by eye."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(pairs), min(n, len(pairs)), replace=False))
    idx = idx[np.argsort(pairs.residual[idx], kind="stable")]
    cell, per_row = 84, 6
    rows = (len(idx) + per_row - 1) // per_row
    sheet = Image.new("RGB", (per_row * (2 * cell + 16), rows * (cell + 14)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, q in enumerate(idx):
        r, c = divmod(k, per_row)
        x0, y0 = c * (2 * cell + 16), r * (cell + 14)
        for m, f in enumerate((files[pairs.i[q]], files[pairs.j[q]])):
            sheet.paste(open_image(f).resize((cell, cell), Image.Resampling.NEAREST), (x0 + m * (cell + 2), y0))
        names = "/".join(files[x].parent.name[:5] for x in (pairs.i[q], pairs.j[q]))
        draw.text((x0, y0 + cell), f"{k} {pairs.residual[q]:.1f} {names}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print(f"contact sheet of {len(idx)} random pairs of {len(pairs)}: {path}")


def _run_clean(src: Path, out: Path, pythonpath: str | None, workers: int | None) -> tuple[float, dict]:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = [sys.executable, "-m", "imgclf", "clean", str(src), "--out", str(out)]
    if workers:
        cmd += ["--workers", str(workers)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - t
    return took, json.loads((out / "_reports" / "clean_report.json").read_text())


def clean_cost(root: Path, old_src: Path, workers: int | None, repeats: int = 1) -> None:
    """Times `imgclf clean` of `old_src` and of this tree on `root`, alternating old, new, old,
    new ... (`repeats` times each), so that a change of load on a shared machine hits both."""
    print(
        f"\n`imgclf clean` on {root}: {old_src} (PYTHONPATH) vs this tree, alternating, {repeats} run(s) each; "
        f"load average before: {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        for r in range(repeats):
            for name, path in (("old", str(old_src)), ("new", None)):
                t, rep = _run_clean(root, Path(tmp) / f"{name}{r}", path, workers)
                rows.append((name, r, t, rep, os.getloadavg()[0]))
                shutil.rmtree(Path(tmp) / f"{name}{r}")
    print("| clean | run | wall time | load average after | kept | set aside as duplicates | groups |")
    print("|---|---|---|---|---|---|---|")
    for name, r, t, rep, load in rows:
        dup = sum(v for k, v in rep["rejected"].items() if k in ("duplicate", "near_duplicate"))
        label = f"old ({old_src})" if name == "old" else "new (verified detector)"
        print(f"| {label} | {r + 1} | {t:.1f} s | {load:.1f} | {rep['kept']} | {dup} | {rep['duplicate_groups']} |")
    old = [t for name, _, t, _, _ in rows if name == "old"]
    new = [t for name, _, t, _, _ in rows if name == "new"]
    print(
        f"ratio new / old: {sum(new) / sum(old):.2f}x (total of the runs); per pair of runs: "
        + ", ".join(f"{n / o:.2f}x" for o, n in zip(old, new)),
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/dedupe-bench", help="folder the benchmark is built in (reused)")
    ap.add_argument(
        "--imagededup-python",
        default="/tmp/dedupe-venv/bin/python",
        help="python of a venv with imagededup installed; missing = skip imagededup",
    )
    ap.add_argument("--fashion", default=None, help="Fashion-MNIST PNG folder for the cost part (created if empty)")
    ap.add_argument("--fashion-n", type=int, default=70_000)
    ap.add_argument("--skip-set", action="store_true", help="only the Fashion-MNIST cost part")
    ap.add_argument("--grid", action="store_true", help="also evaluate the settings of GRID around the defaults")
    ap.add_argument("--sheet", default=None, help="PNG path: contact sheet of 60 random Fashion-MNIST pairs found")
    ap.add_argument("--pairs-out", default=None, help=".npz path: the verified pairs of the defaults (i, j, ...)")
    ap.add_argument(
        "--sheet-set",
        default=None,
        help="PNG path: contact sheet of the hardest pairs found and missed (issue 30's kinds) and the false pairs",
    )
    ap.add_argument(
        "--old-src",
        default=None,
        help="src/ of a previous imgclf (PYTHONPATH) whose `imgclf clean` "
        "is timed against this tree's on the --fashion folder",
    )
    ap.add_argument("--clean-workers", type=int, default=None, help="--workers for both `imgclf clean` runs")
    ap.add_argument("--clean-repeats", type=int, default=1, help="alternating runs of each `imgclf clean`")
    args = ap.parse_args()
    print(f"numpy {np.__version__}; icon sizes {ICON_SIZES}", flush=True)
    if not args.skip_set:
        bench_set(args)
    if args.fashion:
        bench_fashion(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
