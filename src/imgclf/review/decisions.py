"""The review decisions, as `imgclf review` uses them: a re-export of `imgclf.records.decisions`.

The decisions database (`DIR/_reports/decisions.sqlite`: schema, writer `DecisionLog`, reader
`read_decisions`, the effective decision of each image `DecisionIndex`) is a stage record and
lives in `imgclf.records.decisions`; how `clean` replays it is `imgclf.clean.replay`. Nothing
here is review's own: new code imports `imgclf.records.decisions`, and this module goes once
the review app's modules and `imgclf.audit.report` do.
"""

from __future__ import annotations

from imgclf.records.decisions import (
    ACTIONS,
    DB_FILES,
    DB_NAME,
    IMAGE_ACTIONS,
    REASON_MANUAL,
    REPORTS_DIR,
    SCHEMA_VERSION,
    Decision,
    DecisionIndex,
    DecisionLog,
    database_path,
    file_sha256,
    read_decisions,
    source_path,
)

__all__ = [
    "ACTIONS",
    "DB_FILES",
    "DB_NAME",
    "IMAGE_ACTIONS",
    "REASON_MANUAL",
    "REPORTS_DIR",
    "SCHEMA_VERSION",
    "Decision",
    "DecisionIndex",
    "DecisionLog",
    "database_path",
    "file_sha256",
    "read_decisions",
    "source_path",
]
