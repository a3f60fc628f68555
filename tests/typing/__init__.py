"""Programs written as a user writes them, checked by ``mypy --strict`` (never run).

Each module is what a user of poolkit writes; ``make test`` type-checks this
folder (``mypy tests/typing``, with ``warn_unused_ignores``). Lines that must
fail carry ``# type: ignore[code]``: if poolkit's types stopped rejecting one,
its ignore would be unused and mypy would report it, so the expectations are
checked both ways. ``assert_type`` pins what a call returns. The functions are
never called (pytest collects ``test_*.py`` only); what the types promise at
run time is tested in ``tests/adapters/test_typed_proxies.py``.
"""
