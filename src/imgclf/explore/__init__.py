"""Explore unlabeled images: embeddings, KMeans clusters, and a convolutional autoencoder.

- `embed.py`: one vector per image from raw pixels, an autoencoder's bottleneck, or any
  registry / trained model's global-pooled penultimate layer (the layer named `"embedding"`).
- `cluster.py`: KMeans (scikit-learn) over embeddings, `k` given or chosen by silhouette score;
  writes one folder per cluster, a CSV, contact sheets and a 2-D map.
- `autoencoder.py`: a small convolutional autoencoder (train, reconstruct, encode).
- `sheets.py`: contact sheets, reconstruction grids and 2-D maps as PNG files.

Heavy libraries (TensorFlow, matplotlib) are imported inside the functions that need them.
"""
