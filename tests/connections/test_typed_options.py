"""The typed option names (``ConnectionPoolOptions``) are exactly the options a pool takes.

``**options: Unpack[ConnectionPoolOptions[C]]`` is what a type checker holds
user code to: an option missing from the TypedDict is a type error for a user
who passes it correctly, and a name only in the TypedDict is a runtime error.
"""

from __future__ import annotations

import inspect

from poolkit.connections._options import ConnectionPoolOptions, KeyOptions, make_options


def keys(typed: type) -> set[str]:
    return set(typed.__required_keys__) | set(typed.__optional_keys__)  # type: ignore[attr-defined]


def test_connection_pool_options_name_every_option_make_options_takes() -> None:
    assert keys(ConnectionPoolOptions) == set(inspect.signature(make_options).parameters)


def test_key_options_are_the_per_key_options() -> None:
    # A keyed pool sizes each key with its own max_size_per_key / min_size_per_key.
    per_pool = {"min_size", "max_size", "max_idle"}
    assert keys(KeyOptions) == set(inspect.signature(make_options).parameters) - per_pool
