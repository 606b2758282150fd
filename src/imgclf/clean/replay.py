"""How `clean` replays the review decisions on its output: the pure rule (decisions and images in,
actions out).

`imgclf review` records a person's decisions in `DIR/_reports/decisions.sqlite`
(`imgclf.records.decisions`: the database, and `DecisionIndex`, the effective decision of each
image after undos). `imgclf clean SRC --out DIR` reads them before it rewrites `DIR` and, in its
reduce, turns them into an action per input image (`plan_replay`):

- An image of the input is matched to a decision by sha256 first -- and when several files have
  those bytes (a copy filed under two classes), only the one at the decision's path, if it is
  still there -- then by path (for a file whose bytes changed): the decision's path with any
  `_rejected/<reason>/` prefix removed.
- Effective `reject`: the image goes to `_rejected/manual/<its path>` (reason `"manual"`),
  whatever `clean` would have done with it. Effective `relabel`: the image is treated as a
  member of the new class (duplicate groups and label conflicts see the new label) and written
  to the new class folder, same file name (`<old class>__<name>` if that name is taken).
  Effective `keep`: no change. A relabel to the class the image already has is a keep; a
  relabel to a name that cannot be a class folder is not applied (`class_name_problem`).
  Undone decisions are not applied. Replaying twice gives the same output (idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from imgclf.records.clean import DecisionRow, DecisionsReport, InvalidDecision, ReplayedFile
from imgclf.records.decisions import REASON_MANUAL, Decision, DecisionIndex, source_path

#: The replay rule in words (`clean_report.json`, `decisions.rule`).
REPLAY_RULE = (
    "latest decision per image (by sha256, else path) after undos; reject -> _rejected/manual/, "
    "relabel -> new class folder, keep -> unchanged"
)


@dataclass(frozen=True)
class ReplayItem:
    """What the replay knows about one image of the input.

    Attributes:
        rel: str. Path relative to the input folder, "/"-separated.
        sha256: str. Hex sha256 of its bytes.
        label: str. Its class folder.
        subset: str or None. "train" / "val" / "test" in a pre-split input.
    """

    rel: str
    sha256: str
    label: str
    subset: str | None = None


@dataclass(frozen=True)
class ReplayAction:
    """What to do with one image.

    Attributes:
        rel: str. The image's path relative to the input.
        action: str. `"reject"`, `"relabel"` or `"keep"`.
        decision: Decision. The effective decision.
        matched_by: str. `"sha256"` or `"path"`.
        label: str. The image's class in the input.
        new_label: str or None. `relabel`: the new class.
        dest: str. Where it goes, relative to the output: `_rejected/manual/<rel>` (reject), the
            new class folder's path (relabel), or `rel` (keep).
    """

    rel: str
    action: str
    decision: Decision
    matched_by: str
    label: str
    new_label: str | None
    dest: str

    @property
    def detail(self) -> str:
        """Why, in words (for `rejects.csv`)."""
        d = self.decision
        where = f" on {d.view}" if d.view else ""
        if self.action == "reject":
            return f"rejected in imgclf review{where} at {d.time} (decision {d.id})"
        if self.action == "relabel":
            return f"relabelled {self.label} -> {self.new_label} in imgclf review{where} at {d.time} (decision {d.id})"
        return f"kept in imgclf review{where} at {d.time} (decision {d.id})"


@dataclass
class ReplayPlan:
    """The result of `plan_replay`.

    Attributes:
        actions: dict rel -> ReplayAction, for every input image with an effective decision.
        not_found: list of Decision. Effective decisions that match no input image.
        invalid: list of `(Decision, why)`. Effective decisions that cannot be applied (a
            relabel to a name that cannot be a class folder).
        undone: int. Decisions taken back by an undo.
        rows: int. Rows of the database.
    """

    actions: dict[str, ReplayAction] = field(default_factory=dict)
    not_found: list[Decision] = field(default_factory=list)
    invalid: list[tuple[Decision, str]] = field(default_factory=list)
    undone: int = 0
    rows: int = 0

    def counts(self) -> dict[str, int]:
        """`{"rows", "rejected", "relabelled", "kept", "undone", "not_found", "invalid"}` counts."""
        kinds = [a.action for a in self.actions.values()]
        return {
            "rows": self.rows,
            "rejected": kinds.count("reject"),
            "relabelled": kinds.count("relabel"),
            "kept": kinds.count("keep"),
            "undone": self.undone,
            "not_found": len(self.not_found),
            "invalid": len(self.invalid),
        }

    def report(self, database: str | None = None) -> DecisionsReport:
        """The summary `clean_report.json` keeps: counts, then one entry per file.

        Args:
            database: str or None, default None. The database's path relative to the output
                (None: the report's short form, no database).

        Returns:
            `imgclf.records.clean.DecisionsReport`.
        """
        files = [
            ReplayedFile(
                file=a.rel,
                action=a.action,
                label=a.label,
                new_label=a.new_label,
                to=a.dest,
                matched_by=a.matched_by,
                decision=a.decision.id,
                time=a.decision.time,
                view=a.decision.view,
            )
            for a in sorted(self.actions.values(), key=lambda a: a.rel)
        ]
        return DecisionsReport(
            database=database,
            **self.counts(),
            rule=REPLAY_RULE,
            files=files,
            not_found_files=[DecisionRow(**d.to_dict()) for d in self.not_found],
            invalid_decisions=[InvalidDecision(**d.to_dict(), why=why) for d, why in self.invalid],
        )


def class_name_problem(name: str) -> str | None:
    """Why `name` cannot be a class folder (None when it can).

    Args:
        name: str. A proposed class name.

    Returns:
        str or None: e.g. `"starts with '_'"`.
    """
    if not name or name.strip() != name:
        return "is empty or has surrounding spaces"
    if name.startswith(("_", ".")):
        return "starts with '_' or '.' (never a class)"
    if any(c in name for c in "/\\\0") or name in (".", ".."):
        return "contains a path separator"
    return None


def _relabelled(item: ReplayItem, new_label: str, taken: set[str]) -> str:
    parts = list(PurePosixPath(item.rel).parts)
    k = 1 if item.subset else 0
    parts[k] = new_label
    dest = "/".join(parts)
    if dest not in taken:
        return dest
    name = PurePosixPath(parts[-1])
    n = 1
    while True:
        suffix = "" if n == 1 else f"_{n}"
        parts[-1] = f"{item.label}__{name.stem}{suffix}{name.suffix}"
        dest = "/".join(parts)
        if dest not in taken:
            return dest
        n += 1


def plan_replay(decisions: Iterable[Decision], items: Sequence[ReplayItem]) -> ReplayPlan:
    """Turns decisions and the input's images into what `clean` does with each image (pure).

    Args:
        decisions: iterable of Decision (`read_decisions`).
        items: sequence of ReplayItem, one per readable input image.

    Returns:
        ReplayPlan. Deterministic: the same decisions and items give the same plan, so a
        rerun of `clean` writes the same output.
    """
    index = DecisionIndex(decisions)
    plan = ReplayPlan(undone=index.undone, rows=index.rows)
    effective = index.effective()
    ordered = sorted(items, key=lambda it: it.rel)
    matched: dict[str, tuple[str, str]] = {}  # rel -> (key, matched_by)
    used: set[str] = set()
    by_sha: dict[str, list[ReplayItem]] = {}
    for it in ordered:
        if it.sha256:
            by_sha.setdefault(f"sha256:{it.sha256}", []).append(it)
    for k, d in effective.items():  # by sha256 first; among copies, the one at the decision's path
        cands = by_sha.get(k, [])
        exact = [it for it in cands if it.rel == source_path(d.path)]
        for it in exact or cands:
            matched[it.rel] = (k, "sha256")
            used.add(k)
    for it in ordered:  # then by path, for decisions whose bytes are not in the input
        if it.rel in matched:
            continue
        pk = index.key_by_path(it.rel)
        if pk is not None and pk not in used:
            matched[it.rel] = (pk, "path")
    used |= {k for k, _ in matched.values()}
    taken = {it.rel for it in ordered}
    for it in ordered:
        if it.rel not in matched:
            continue
        k, by = matched[it.rel]
        d = effective[k]
        action, new_label, dest = d.action, None, it.rel
        if action == "reject":
            dest = f"_rejected/{REASON_MANUAL}/{it.rel}"
        elif action == "relabel":
            new_label = str(d.new_label)
            problem = class_name_problem(new_label)
            if problem:
                plan.invalid.append((d, f"new label {new_label!r} {problem}"))
                continue
            if new_label == it.label:
                action, new_label = "keep", None
            else:
                dest = _relabelled(it, new_label, taken)
                taken.add(dest)
        plan.actions[it.rel] = ReplayAction(it.rel, action, d, by, it.label, new_label, dest)
    plan.not_found = sorted((effective[k] for k in effective if k not in used), key=lambda d: d.id)
    return plan
