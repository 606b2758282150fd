"""`imgclf audit`: find wrong labels and outliers in a labelled image folder.

The stage is map -> reduce -> apply (docs/architecture.md):

- `imgclf.audit.run`: `audit_folder`, the stage: list -> map -> reduce -> apply -> summary.
- `imgclf.audit.load`: the map, `load_entry` (one file -> its pixels or why it is unreadable),
  run through an `imgclf.engine` executor; `load_all` (pixels, for `--cv-train`) and
  `embed_all` (embeddings in batches, for the linear probe).
- `imgclf.audit.reduce`: the reduce, pure over arrays: folds, out-of-fold probabilities and
  outlier scores, then `plan_audit` (confident learning, issues, noise per class / source / split).
- `imgclf.audit.oof`: grouped, stratified K folds, the linear probe and the kNN outlier scores
  (scikit-learn).
- `imgclf.audit.cvtrain`: `--cv-train`, the real model trained once per fold.
- `imgclf.audit.confident`: confident learning by cleanlab (`cleanlab>=2.8`, Apache-2.0):
  the rules, the confident joint, the noise rates, the label issues.
- `imgclf.audit.sources`: scrape sources and fold groups (duplicates, posts).
- `imgclf.audit.report`: the apply step: the files (`imgclf.records.audit`) and the page
  (`imgclf/templates/audit.html`).
- `imgclf.config.AuditConfig`: the options (with the other stage configs).

Importing this package imports neither TensorFlow, scikit-learn nor cleanlab.
"""
