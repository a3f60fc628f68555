"""The error an adapter raises at import when its client library is not installed."""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(module: str, library: str, extra: str) -> ImportError:
    """The ImportError for ``poolkit.adapters.<module>`` without its client library.

    Args:
        module: the adapter module's own name (``"psycopg"``).
        library: what it needs, as a user would install it (``"psycopg 3"``).
        extra: the poolkit extra that installs it (``"postgres"``).

    Returns:
        The error to raise (from the original ImportError).
    """
    return ImportError(
        f"poolkit.adapters.{module} needs {library}: install the extra with "
        f"pip install 'poolkit[{extra}]'"
    )
