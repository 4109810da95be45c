"""Machinery shared by every vector adapter.

* :mod:`strataml.vectors.batch` -- validating ``upsert`` batches and search arguments
  (dimensions, finite values, ids, tenants, metadata types) the same way on every backend.
* :mod:`strataml.vectors.fusion` -- hybrid search by fusing a dense and a keyword result list
  (weighted reciprocal-rank fusion and relative-score fusion), scores in ``[0, 1]``.
* :mod:`strataml.vectors.columns` -- ``scan_metadata``'s Arrow batches (ids and scalar
  metadata fields, column-wise), for adapters that read rows.
"""

from strataml.vectors.batch import VectorBatch, prepare_batch, query_vector
from strataml.vectors.fusion import DEFAULT_FUSION, fuse, fuse_hits

__all__ = ["DEFAULT_FUSION", "VectorBatch", "fuse", "fuse_hits", "prepare_batch", "query_vector"]
