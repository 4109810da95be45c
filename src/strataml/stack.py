"""A :class:`Stack`: the five stores of one profile, built lazily, closed together."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from strataml._args import as_list
from strataml.capabilities import Capabilities, check_requirements
from strataml.config import AdapterConfig, StackProfile, load_profile
from strataml.errors import ConfigError, InvalidInput
from strataml.models import FeatureView
from strataml.registry import Adapter, StackContext, get_adapter

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow as pa

    from strataml.features.drift import DriftReport
    from strataml.features.materialize import MaterializeReport
    from strataml.features.serving import CompareReport, FeatureServer
    from strataml.features.transforms import Transform
    from strataml.protocols import (
        AsyncOnlineStore,
        FeatureStore,
        IngestStore,
        OnlineStore,
        TrainingSource,
        VectorStore,
    )
    from strataml.vectors.refresh import RefreshReport

__all__ = ["Stack", "open_stack"]


def _validation_message(exc: ValidationError) -> str:
    # never echo input values: they may hold secrets
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc or '(section)'}: {err.get('msg')}")
    return "; ".join(parts)


class Stack:
    """The data layer of an ML system: ``.ingest .features .online .vectors .training``.

    Built from a :class:`~strataml.config.StackProfile`. Every role's adapter is resolved, its
    settings validated and its capabilities checked when the stack is opened; each store
    connects on first use. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, profile: StackProfile) -> None:
        self.profile = profile
        self._ctx = StackContext()
        self._lock = threading.RLock()
        self._stores: dict[str, Any] = {}
        self._plan: dict[str, tuple[Adapter, AdapterConfig]] = {}
        self._closed = False
        for role, section in profile.roles.items():
            type_name = str(section["type"])
            adapter = get_adapter(type_name, role)
            if role not in adapter.factories:
                serves = ", ".join(sorted(adapter.factories)) or "nothing"
                raise ConfigError(
                    f"profile {profile.name!r}: backend {type_name!r} cannot serve [{role}] "
                    f"(it serves: {serves})"
                )
            try:
                config = adapter.config.model_validate(section)
            except ValidationError as exc:
                raise ConfigError(
                    f"profile {profile.name!r} [{role}] ({type_name}): {_validation_message(exc)}"
                ) from None
            check_requirements(role, type_name, adapter.capabilities[role], config.require)
            self._plan[role] = (adapter, config)

    # ------------------------------------------------------------------------------- stores
    def _store(self, role: str, *, asynchronous: bool = False) -> Any:
        key = f"{role}:async" if asynchronous else role
        store = self._stores.get(key)
        if store is not None:
            return store
        with self._lock:
            if self._closed:
                raise ConfigError("this stack is closed")
            if key in self._stores:
                return self._stores[key]
            if role not in self._plan:
                raise ConfigError(f"profile {self.profile.name!r} has no [{role}] store")
            adapter, config = self._plan[role]
            if asynchronous:
                factory = adapter.async_factories.get(role)
                if factory is None:
                    from strataml.aio import to_async

                    store = to_async(role, self._store(role))
                else:
                    store = factory(config, self._ctx)
            else:
                store = adapter.factories[role](config, self._ctx)
            self._stores[key] = store
            return store

    @property
    def ingest(self) -> IngestStore:
        return self._store("ingest")  # type: ignore[no-any-return]

    @property
    def features(self) -> FeatureStore:
        return self._store("features")  # type: ignore[no-any-return]

    @property
    def online(self) -> OnlineStore:
        return self._store("online")  # type: ignore[no-any-return]

    @property
    def online_async(self) -> AsyncOnlineStore:
        return self._store("online", asynchronous=True)  # type: ignore[no-any-return]

    @property
    def vectors(self) -> VectorStore:
        return self._store("vectors")  # type: ignore[no-any-return]

    @property
    def training(self) -> TrainingSource:
        return self._store("training")  # type: ignore[no-any-return]

    def capabilities(self, role: str) -> Capabilities:
        """The declared capabilities of a role's backend (no connection needed)."""
        if role not in self._plan:
            raise ConfigError(f"profile {self.profile.name!r} has no [{role}] store")
        adapter, _ = self._plan[role]
        return adapter.capabilities[role]

    def backends(self) -> dict[str, str]:
        """Role -> backend type."""
        return {role: adapter.name for role, (adapter, _) in self._plan.items()}

    def sync(self, stream: str, *, table: str | None = None, batch_size: int = 50_000) -> int:
        """Load new records of an ingest stream into the feature store (exactly once).

        See :func:`strataml.pipeline.sync_stream`.
        """
        from strataml.pipeline import sync_stream

        return sync_stream(self.ingest, self.features, stream, table=table, batch_size=batch_size)

    # ----------------------------------------------------------------- feature platform
    def feature_view(self, view: str | FeatureView) -> FeatureView:
        """A registered view: ``"name"`` (latest), ``"name@2"``, or a definition from code
        (returned as is, after checking its name/version are registered)."""
        if isinstance(view, FeatureView):
            self.features.get_view(view.name, view.version)
            return view
        if not isinstance(view, str):
            raise InvalidInput(f"a view reference is a name or a FeatureView, not {view!r}")
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:@([0-9]+))?", view)
        if m is None:  # ASCII digits only: int() would also read other scripts' digits
            raise InvalidInput(f"bad view reference {view!r}; write 'name' or 'name@2'")
        return self.features.get_view(m[1], int(m[2]) if m[2] else None)

    def materialize(self, view: str | FeatureView, **kwargs: Any) -> MaterializeReport:
        """Offline -> online for one view (see :func:`strataml.features.materialize`)."""
        from strataml.features.materialize import materialize

        ref = self.feature_view(view) if isinstance(view, str) else view
        return materialize(self.features, self.online, ref, **kwargs)

    def feature_server(
        self,
        views: Sequence[str | FeatureView],
        *,
        transforms: Sequence[Transform] = (),
        skew_guard: bool = True,
    ) -> FeatureServer:
        """A :class:`~strataml.features.FeatureServer` over the online store for ``views``
        (definitions from code, or registered names ``"name"`` / ``"name@2"``). With
        ``transforms``, the feature types the views' last materializations recorded are passed
        on (``feature_types``), so transforms see the types they saw in training."""
        from strataml.features.materialize import materialized_types
        from strataml.features.serving import FeatureServer

        views = as_list(
            views,
            "views",
            "feature views (names like 'name' / 'name@2', or FeatureView definitions)",
            kind=(str, FeatureView),
        )
        defs: list[FeatureView] = []
        types: dict[str, Any] = {}
        for v in views:
            if isinstance(v, FeatureView) and v.features is None:
                # a definition from code: its features are the registered version's
                registered = self.features.get_view(v.name, v.version)
                v = v.model_copy(update={"features": registered.features})
            defs.append(v if isinstance(v, FeatureView) else self.feature_view(v))
            if transforms:
                types.update(materialized_types(self.features, defs[-1]))
        return FeatureServer(
            self.online, defs, transforms=transforms, skew_guard=skew_guard, feature_types=types
        )

    def compare_online(self, view: str | FeatureView, *, sample: int = 1000) -> CompareReport:
        """Recompute a sample offline and compare with online (see
        :func:`strataml.features.compare_online`)."""
        from strataml.features.serving import compare_online

        return compare_online(self.features, self.online, self.feature_view(view), sample=sample)

    def features_drift(
        self,
        view: str | FeatureView,
        *,
        baseline: Any,
        current: Any,
        version: int | None = None,
        save: bool = False,
    ) -> DriftReport:
        """PSI / KS / null-rate drift of ``view`` between a baseline (a ``(start, end)`` window,
        stored :class:`~strataml.features.FeatureStats` or ``"latest-stats"``) and a current
        window, with the thresholds of the profile's ``[drift]`` table (see
        :func:`strataml.features.drift.features_drift`)."""
        from strataml.features.drift import DriftConfig, features_drift

        return features_drift(
            self.features,
            view,
            baseline=baseline,
            current=current,
            version=version,
            thresholds=DriftConfig.model_validate(self.profile.drift),
            save=save,
        )

    def historical(
        self,
        labels: Any,
        features: Sequence[str],
        *,
        transforms: Sequence[Transform] = (),
        **kwargs: Any,
    ) -> pa.Table:
        """Point-in-time training data (:meth:`FeatureStore.historical`) plus the outputs of
        the request-time ``transforms`` -- the same ones a :meth:`feature_server` runs."""
        from strataml.features.transforms import apply_to_table

        table = self.features.historical(labels, features, **kwargs)
        return apply_to_table(table, transforms) if transforms else table

    # ------------------------------------------------------------------------ vector lifecycle
    def refresh(
        self, collection: str, documents: Any, embedder: Any, **options: Any
    ) -> RefreshReport:
        """Incremental refresh of a vector collection: embed only new and changed documents,
        delete removed ones (see :func:`strataml.vectors.refresh.refresh`)."""
        from strataml.vectors.refresh import refresh

        return refresh(self.vectors, collection, documents, embedder, **options)

    # ------------------------------------------------------------------------------ closing
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for store in reversed(list(self._stores.values())):
                try:
                    store.close()
                except Exception:  # noqa: BLE001 - close everything, whatever fails
                    pass
            self._stores.clear()
            self._ctx.close()

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        roles = ", ".join(f"{r}={a.name}" for r, (a, _) in self._plan.items())
        return f"<Stack {self.profile.name!r} {roles}>"


def open_stack(
    profile: str | None = None,
    *,
    data_dir: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Stack:
    """Open a stack: a built-in profile name (``local``, ``lean``, ``growth``, ``growth-aws``,
    ``enterprise``), a path to a ``.toml`` profile, or ``None`` for ``$STRATAML_PROFILE``
    (default ``local``)."""
    return Stack(load_profile(profile, data_dir=data_dir, overrides=overrides))
