"""The peer's point-in-time join, for bench_pit.py: Feast ``get_historical_features`` with its
DuckDB offline store over the same data (parquet files written by bench_pit.py).

Run with an interpreter that has Feast (it is not a strataml dependency), e.g.::

    python -m venv /tmp/feast && /tmp/feast/bin/pip install "feast[duckdb]"
    python bench/bench_pit.py --feast-python /tmp/feast/bin/python

Prints one JSON line: median seconds of ``rounds`` runs (result fetched to Arrow), rows,
nulls in the first feature, and the peak RSS of this process.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    feats_path, labels_path, n_features, rounds = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    import pyarrow.parquet as pq
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.types import Float64

    with tempfile.TemporaryDirectory() as tmp:
        entity = Entity(name="entity", join_keys=["entity_id"])
        source = FileSource(path=str(Path(feats_path).resolve()), timestamp_field="ts")
        view = FeatureView(
            name="fv",
            entities=[entity],
            ttl=dt.timedelta(days=3650),
            schema=[Field(name=f"f{i}", dtype=Float64) for i in range(n_features)],
            source=source,
        )
        config = RepoConfig(
            project="bench",
            registry=str(Path(tmp) / "registry.db"),
            provider="local",
            offline_store=DuckDBOfflineStoreConfig(),
            online_store=SqliteOnlineStoreConfig(path=str(Path(tmp) / "online.db")),
            entity_key_serialization_version=3,
        )
        store = FeatureStore(config=config)
        store.apply([entity, view])
        labels = pq.read_table(labels_path).to_pandas()
        refs = [f"fv:f{i}" for i in range(n_features)]
        secs: list[float] = []
        out = None
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = store.get_historical_features(entity_df=labels, features=refs).to_arrow()
            secs.append(time.perf_counter() - t0)
        assert out is not None
        print(
            json.dumps(
                {
                    "seconds": statistics.median(secs),
                    "rows": out.num_rows,
                    "nulls": out.column("f0").null_count,
                    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
        )


if __name__ == "__main__":
    main()
