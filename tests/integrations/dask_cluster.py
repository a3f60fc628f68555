"""A LocalCluster for the Dask tests (two worker processes on loopback)."""

from __future__ import annotations

from typing import Any

distributed: Any  # the module, or None (skipped locally, a failure in CI)
try:
    import distributed as _distributed

    distributed = _distributed
except ImportError:
    distributed = None

# Bound on every wait in these tests: reaching it is a failure, never a pass.
LIMIT = 60.0


def local_cluster() -> Any:
    """Two worker processes on loopback; no dashboard.

    The scheduler's HTTP server listens even without a dashboard, on 8787
    when ``dashboard_address=None``, and warns (an error under
    ``filterwarnings = error``) when another cluster holds that port: an
    ephemeral loopback port never collides.
    """
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )
