"""Write the sync twins of poolkit's async connection modules and their tests.

The async module is the one source; its sync twin is derived in three steps:

1. Directives, trailing comments in the source (a statement's first line):

   - ``# async-only``: the statement, with its block, is left out.
   - ``# locked``: the statement, with its block, runs under ``self._lock``,
     a :class:`poolkit._tokenlock.TokenLock` taken inline (:data:`TAKE_LOCK`)
     just before a ``try`` whose ``finally`` gives it back: no call in
     between, where a ``KeyboardInterrupt`` could land and leave it held. On the
     event loop a core call without an ``await`` is atomic and needs no lock.
     Nothing in it may take the lock again (it is not reentrant) or wait: a
     block holds core calls and the driver's own locked-section helpers only,
     never an ``await``.
   - a comment line ``# sync: CODE``: CODE is a line of the sync twin only.

2. Substitutions: the regexes of :data:`SUBS`, word by word on every line
   (``AsyncConnectionPool`` -> ``ConnectionPool``, ``await x`` -> ``x``...).

3. ruff: imports sorted, imports the sync twin does not use dropped, nested
   ``with`` blocks merged (``async with`` inside ``with`` cannot be), formatted.

Usage: ``python scripts/gen_sync.py`` writes the twins; ``--check`` only
compares and exits 1, naming each stale file, if one differs.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (async source, generated sync twin), relative to the repository root.
PAIRS = [
    ("src/poolkit/connections/_async.py", "src/poolkit/connections/_sync.py"),
    ("src/poolkit/connections/_keyed_async.py", "src/poolkit/connections/_keyed.py"),
    ("src/poolkit/connections/_lease_async.py", "src/poolkit/connections/_lease.py"),
    ("src/poolkit/connections/_pooled_async.py", "src/poolkit/connections/_pooled.py"),
    ("src/poolkit/connections/_run_async.py", "src/poolkit/connections/_run.py"),
    ("tests/connections/test_async_pool.py", "tests/connections/test_pool.py"),
    ("tests/connections/test_async_run.py", "tests/connections/test_run.py"),
]

# (pattern, replacement), applied in order to every line the directives keep.
SUBS = [
    # Words of docstrings and comments (before the names change).
    (r"\ban (:class:`~?poolkit\.Async)", r"a \1"),
    (r"\bAn asyncio pool\b", "A thread-safe pool"),
    # Names: AsyncX -> X, _AsyncX -> _X, async_x -> x (the _compat twins too).
    (r"\b(_?)Async([A-Z]\w*)", r"\1\2"),
    (r"\basync_(\w+)", r"\1"),
    # Syntax.
    (r"\basync (def|with|for)\b", r"\1"),
    (r"\bawait ", ""),
    (r"\b__a(enter|exit)__\b", r"__\1__"),
    (r"\bis_async=True\b", "is_async=False"),
    # Modules: _async -> _sync, _x_async -> _x.
    (r"\bpoolkit\.connections\._async\b", "poolkit.connections._sync"),
    (r"\b(_[a-z]+)_async\b", r"\1"),
]
COMPILED = [(re.compile(pattern), repl) for pattern, repl in SUBS]
# Lines of docstrings about the event loop, left out of the sync twin.
LOOP_LINES = re.compile(r"^\s*EventLoopMismatch: ")

DIRECTIVE = re.compile(r"#\s*(async-only|locked)\s*$")
SYNC_LINE = re.compile(r"^(\s*)# sync: ?(.*)$")
INDENT = "    "
# How a '# locked' statement takes the pool's TokenLock: inline, with no call
# between taking the token and the try that gives it back, so that no
# KeyboardInterrupt can land in between (see poolkit._tokenlock).
TAKE_LOCK = (
    "while True:",
    f"{INDENT}try:",
    f"{INDENT * 2}del self._lock.token[0]",
    f"{INDENT * 2}break",
    f"{INDENT}except IndexError:",
    f"{INDENT * 2}self._lock.wait_turn()",
)


def header(source: str) -> str:
    return (
        f"# Generated from {source} by scripts/gen_sync.py: do not edit.\n"
        "# Change the source, then run `python scripts/gen_sync.py`.\n"
    )


def statement_spans(text: str) -> dict[int, tuple[int, int, bool]]:
    """First line -> (first, last line, awaits) of the outermost statement there.

    ``awaits``: an ``await`` is in the statement (its block included).
    """
    spans: dict[int, tuple[int, int, bool]] = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.stmt) and node.end_lineno is not None:
            first = node.lineno
            decorators = getattr(node, "decorator_list", [])
            start = min([first, *(d.lineno for d in decorators)])
            old = spans.get(first)
            if old is None or node.end_lineno > old[1]:
                awaits = any(isinstance(sub, ast.Await) for sub in ast.walk(node))
                spans[first] = (start, node.end_lineno, awaits)
    return spans


def directives(text: str) -> dict[int, str]:
    """Line -> directive, from real comments only (not text inside strings)."""
    found: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            match = DIRECTIVE.search(tok.string)
            if match:
                found[tok.start[0]] = match.group(1)
    return found


def apply_directives(text: str) -> list[str]:
    """The source's lines with the directives carried out (names not changed yet)."""
    lines = text.splitlines()
    spans = statement_spans(text)
    # First line of each marked statement (its decorators included) -> (kind, last line).
    marked: dict[int, tuple[str, int]] = {}
    for number, kind in directives(text).items():
        if number not in spans:
            raise SystemExit(f"gen_sync: line {number}: '# {kind}' is not on a statement's line")
        first, last, awaits = spans[number]
        # The lock is held across the whole statement: an await in it would
        # hold the lock while waiting (and is not atomic on the loop either).
        if kind == "locked" and awaits:
            raise SystemExit(f"gen_sync: line {number}: a '# locked' statement may not await")
        marked[first] = (kind, last)
    out: list[str] = []
    number = 1
    while number <= len(lines):
        line = lines[number - 1]
        if number not in marked:
            sync = SYNC_LINE.match(line)
            out.append(sync.group(1) + sync.group(2) if sync else line)
            number += 1
            continue
        kind, last = marked[number]
        if kind == "locked":
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + taken for taken in TAKE_LOCK)
            out.append(f"{indent}try:")
            for body in lines[number - 1 : last]:
                out.append(INDENT + DIRECTIVE.sub("", body).rstrip() if body.strip() else body)
            out.append(f"{indent}finally:")
            out.append(f"{indent}{INDENT}self._lock.token.append(True)")
        number = last + 1
    return out


def substitute(line: str) -> str:
    for pattern, repl in COMPILED:
        line = pattern.sub(repl, line)
    return line


def ruff(args: list[str], text: str, filename: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", filename, "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode not in (0, 1) or not result.stdout:
        raise SystemExit(f"gen_sync: ruff {args[0]} failed on {filename}:\n{result.stderr}")
    return result.stdout


def generate(source: str, target: str) -> str:
    """The sync twin of ``source`` (paths relative to the root), as text."""
    text = (ROOT / source).read_text()
    lines = [substitute(line) for line in apply_directives(text) if not LOOP_LINES.match(line)]
    code = header(source) + "\n".join(lines) + "\n"
    try:
        compile(code, target, "exec")
    except SyntaxError as exc:
        raise SystemExit(f"gen_sync: the sync twin of {source} does not compile: {exc}") from exc
    code = ruff(["check", "--fix", "--select", "I,F401,SIM117", "--exit-zero"], code, target)
    return ruff(["format"], code, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale twins")
    args = parser.parse_args(argv)
    stale = 0
    for source, target in PAIRS:
        code = generate(source, target)
        path = ROOT / target
        current = path.read_text() if path.exists() else ""
        if current == code:
            continue
        if args.check:
            stale += 1
            print(f"{target} is stale: regenerate it from {source} with scripts/gen_sync.py")
            diff = difflib.unified_diff(
                current.splitlines(), code.splitlines(), target, "expected", lineterm="", n=1
            )
            print("\n".join(list(diff)[:40]))
        else:
            path.write_text(code)
            print(f"wrote {target}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
