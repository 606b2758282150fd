"""Every file a stage writes for a later stage or command to read, as a typed contract.

The writer of a file is also its reader (Keras' BackupAndRestore rule): each file has its
name, its model (pydantic, or a typed dataclass for arrays and tables), a schema version and
its save / load pair in one module here, and every reader goes through it. A missing, older
or corrupt file is a `imgclf.errors.DataError` (stage folders) or `ModelError` (run folders)
that names the file and the command that writes it. docs/architecture.md lists them all.

Modules:
- `imgclf.records.run`: a training run folder (`run.json`, metrics, predictions, history,
  export sidecars, autoencoder runs).
- `imgclf.records.base`: the shared machinery (`JsonRecord`, CSV tables).
"""
