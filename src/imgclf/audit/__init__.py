"""`imgclf audit`: find wrong labels and outliers in a labelled image folder.

- `imgclf.audit.confident`: confident learning (Northcutt, Jiang & Chuang, JAIR 2021), NumPy
  only: thresholds, confident joint, estimated joint, noise rates, label issues.
- `imgclf.audit.oof`: K-fold out-of-fold probabilities (a linear probe on embeddings) and
  outlier scores (scikit-learn).
- `imgclf.audit.cvtrain`: `--cv-train`, the real model trained once per fold.
- `imgclf.audit.sources`: scrape sources and fold groups (duplicates, posts).
- `imgclf.audit.report`: the output files and their columns.
- `imgclf.audit.run`: `audit_folder`, the stage.
- `imgclf.config.AuditConfig`: the options (with the other stage configs).

Importing this package imports neither TensorFlow nor scikit-learn.
"""
