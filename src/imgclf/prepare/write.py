"""prepare's apply: the records of its output folder, from the plan (the images are written by the map).

Every file is written atomically; a rerun writes them again from its own plan.
"""

from __future__ import annotations

from pathlib import Path

from imgclf.clean.similarity import write_source_record
from imgclf.inputs import InputSpec
from imgclf.prepare.plan import PreparePlan
from imgclf.records.prepare import PrepareRecord, save_prepare_rejects
from imgclf.records.provenance import write_provenance


def write_prepare(out: Path, spec: InputSpec, plan: PreparePlan) -> None:
    """Writes `out/_reports/`: `prepare.json`, `source_signatures.npz`, `provenance.csv` (when
    the input had one) and `prepare_rejects.csv` (when a file was set aside).

    Args:
        out: Path. The output folder (its images are written).
        spec: InputSpec. What `prepare` applied.
        plan: PreparePlan (`imgclf.prepare.plan.plan_prepare`).

    Raises:
        OSError: a file cannot be written.
    """
    PrepareRecord(input_spec=spec).save(out)
    write_source_record(out, plan.sources)
    if plan.provenance is not None:
        write_provenance(out, plan.provenance)
    if plan.rejects:
        save_prepare_rejects(out, plan.rejects)
