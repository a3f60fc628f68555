"""``python -m poolkit``: the same as the ``poolkit`` console script."""

from __future__ import annotations

from poolkit._cli import main

raise SystemExit(main())
