"""Every file a stage writes for a later stage or command to read, as a typed contract.

The writer of a file is also its reader (Keras' BackupAndRestore rule): each file has its
name, its model (pydantic, or a typed dataclass for arrays and tables), a schema version and
its save / load pair in one module here, and every reader goes through it. A missing, older
or corrupt file is a `imgclf.errors.DataError` (stage folders) or `ModelError` (run folders)
that names the file and the command that writes it. docs/architecture.md lists them all.

Modules, in the order the stages write them:
- `imgclf.records.manifest`: the scrape manifest (`_manifest.sqlite`).
- `imgclf.records.clean`: clean's report (`clean_report.json`) and its `images.csv` /
  `rejects.csv` tables.
- `imgclf.records.provenance`: `provenance.csv` (clean, prepare and split carry it).
- `imgclf.records.signatures`: `source_signatures.npz` (near-duplicate signatures from before
  prepare's center crop).
- `imgclf.records.decisions`: the review decisions database (`decisions.sqlite`).
- `imgclf.records.prepare`: `prepare.json` (the input specification applied) and
  `prepare_rejects.csv`.
- `imgclf.records.split`: `split_report.json` and `split.csv`.
- `imgclf.records.run`: a training run folder (`run.json`, metrics, predictions, history,
  export sidecars, autoencoder runs).
- `imgclf.records.base`: the shared machinery (`JsonRecord`, CSV tables).
"""
