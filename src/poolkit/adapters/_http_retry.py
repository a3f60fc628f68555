"""The retry policy, timeouts and errors of :class:`~poolkit.adapters.http.HTTPPool`.

The semantics are urllib3's ``Retry`` and ``Timeout``:

- ``total`` caps every retry (errors, bad statuses and redirects alike);
  ``connect``, ``read``, ``status``, ``other`` and ``redirect`` each cap their
  kind. ``None`` leaves a kind capped by ``total`` only.
- A connect error (the request never left: refused, unreachable, connect
  timeout) is retried whatever the method. A read error (the request went
  out: reset, hang-up, read timeout, a body cut short) and a retry on status
  only when the method is in ``allowed_methods`` (the idempotent ones by
  default) and the body can be sent again.
- A status is retried when it is in ``status_forcelist``, or when it is 413,
  429 or 503 with a ``Retry-After`` header (``respect_retry_after_header``).
  Out of status retries, the last response is returned
  (``raise_on_status=False``) or :class:`MaxRetryError` raised.
- Sleep before a retry: the server's ``Retry-After`` when it sent one for 413,
  429 or 503, else exponential backoff: nothing before the first retry, then
  ``backoff_factor * 2 ** (n - 1)`` after the n-th consecutive failure, plus
  ``random() * backoff_jitter``, capped at ``backoff_max``.

Each request gets its own :class:`RetryState` (the policy itself is frozen
and shared); the state is the sans-io part: it says whether to retry and how
long to sleep, the pool does the sleeping and the I/O.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal

from poolkit._errors import PoolError
from poolkit._validate import check_bool, check_optional_int, check_seconds
from poolkit.adapters._timeouts import check_timeout

__all__ = [
    "DEFAULT_ALLOWED_METHODS",
    "DEFAULT_MAX_REDIRECTS",
    "REDIRECT_STATUSES",
    "RETRY_AFTER_STATUSES",
    "ConnectTimeoutError",
    "MaxRetryError",
    "ReadTimeoutError",
    "RequestHistory",
    "Retry",
    "RetryState",
    "Timeout",
    "parse_retry_after",
]

# urllib3 Retry.DEFAULT_ALLOWED_METHODS: the idempotent methods (RFC 9110 9.2.2).
DEFAULT_ALLOWED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PUT", "TRACE"})
# Statuses whose Retry-After is honoured (urllib3 RETRY_AFTER_STATUS_CODES).
RETRY_AFTER_STATUSES = frozenset({413, 429, 503})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Headers dropped when a redirect leaves the origin (urllib3's default).
DEFAULT_REMOVE_ON_REDIRECT = frozenset({"authorization", "cookie", "proxy-authorization"})
# Redirects followed with redirect=True and no retry policy (requests: 30).
DEFAULT_MAX_REDIRECTS = 10
# urllib3 Retry.DEFAULT_BACKOFF_MAX.
DEFAULT_BACKOFF_MAX = 120.0

Kind = Literal["connect", "read", "status", "redirect", "other"]


class MaxRetryError(PoolError):
    """A request ran out of retries (or of redirects).

    Attributes:
        url: the URL of the last attempt.
        reason: the last error, or ``None`` when the last attempt got a response
            (a status in ``status_forcelist``, or one redirect too many).
        history: every retried attempt (:class:`RequestHistory`).
    """

    def __init__(
        self,
        message: str,
        url: str,
        reason: BaseException | None,
        history: tuple[RequestHistory, ...],
    ) -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason
        self.history = history


class ConnectTimeoutError(PoolError, TimeoutError):
    """Connecting to the server took longer than the connect timeout."""


class ReadTimeoutError(PoolError, TimeoutError):
    """The server did not answer (or send more of its answer) within the read timeout."""


@dataclass(frozen=True)
class RequestHistory:
    """One attempt that was retried or redirected.

    Attributes:
        method, url: what was sent.
        kind: ``"connect"``, ``"read"``, ``"other"`` (an error), ``"status"``
            or ``"redirect"`` (a response).
        error: the error, or ``None``.
        status: the response's status, or ``None``.
        redirect_location: where a redirect pointed.
        slept: seconds slept before the next attempt (``Retry-After`` or backoff).
    """

    method: str
    url: str
    kind: Kind
    error: BaseException | None = None
    status: int | None = None
    redirect_location: str | None = None
    slept: float = 0.0


@dataclass(frozen=True)
class Timeout:
    """Separate connect and read timeouts, in seconds (urllib3 ``Timeout``).

    ``connect`` bounds opening the connection (TCP and TLS); ``read`` bounds
    each wait for the server: sending, the status line and every read of the
    body. Each is > 0; ``math.inf`` means no limit.

    Raises:
        TypeError, ValueError: a bad value (the message names it).
    """

    connect: float
    read: float

    def __post_init__(self) -> None:
        check_timeout("connect", self.connect)
        check_timeout("read", self.read)


def as_timeout(name: str, value: object) -> Timeout:
    """A number (both timeouts) or a :class:`Timeout`, as a :class:`Timeout`.

    Raises:
        TypeError, ValueError: a bad value (the message names ``name``).
    """
    if isinstance(value, Timeout):
        return value
    seconds = check_timeout(name, value)
    return Timeout(seconds, seconds)


def _check_count(name: str, value: object) -> int | None:
    return check_optional_int(name, value, minimum=0)


@dataclass(frozen=True)
class Retry:
    """How an :class:`~poolkit.adapters.http.HTTPPool` retries (urllib3 ``Retry``).

    Args:
        total: retries of any kind (``None``: only the per-kind caps apply).
        connect: retries after connect errors (the request was not sent).
        read: retries after read errors (the request was sent; idempotent
            methods only).
        status: retries on a status in ``status_forcelist`` (or 413/429/503
            with ``Retry-After``).
        other: retries after other errors (TLS, protocol).
        redirect: redirects followed (counted with ``redirect=True``).
        allowed_methods: methods retried after read errors and on statuses
            (``None``: any method). Connect errors are retried for any method.
        status_forcelist: statuses to retry.
        backoff_factor: seconds; the n-th consecutive retry (n >= 2) sleeps
            ``backoff_factor * 2 ** (n - 1)``.
        backoff_max: cap on a backoff sleep, in seconds.
        backoff_jitter: up to this many seconds added at random to a backoff.
        respect_retry_after_header: sleep what a 413, 429 or 503 response's
            ``Retry-After`` says (seconds or an HTTP date) instead of backing off.
        raise_on_status: out of status retries, raise :class:`MaxRetryError`
            (``False``: return the last response).
        raise_on_redirect: out of redirects, raise :class:`MaxRetryError`
            (``False``: return the redirect response).
        remove_headers_on_redirect: header names dropped when a redirect leads
            to another origin (scheme, host or port).

    Raises:
        TypeError, ValueError: a bad value (the message names it).
    """

    total: int | None = 3
    connect: int | None = None
    read: int | None = None
    status: int | None = None
    other: int | None = None
    redirect: int | None = None
    allowed_methods: Collection[str] | None = DEFAULT_ALLOWED_METHODS
    status_forcelist: Collection[int] = frozenset()
    backoff_factor: float = 0.0
    backoff_max: float = DEFAULT_BACKOFF_MAX
    backoff_jitter: float = 0.0
    respect_retry_after_header: bool = True
    raise_on_status: bool = True
    raise_on_redirect: bool = True
    remove_headers_on_redirect: Collection[str] = field(default=DEFAULT_REMOVE_ON_REDIRECT)

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read", "status", "other", "redirect"):
            _check_count(name, getattr(self, name))
        if self.allowed_methods is not None:
            methods = _names("allowed_methods", self.allowed_methods, upper=True)
            object.__setattr__(self, "allowed_methods", methods)
        codes: object = self.status_forcelist
        if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
            raise TypeError(f"status_forcelist must be an iterable of ints, got {codes!r}")
        checked: set[int] = set()
        for code in codes:
            if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                raise ValueError(f"status_forcelist must hold status codes 100-599, got {code!r}")
            checked.add(code)
        object.__setattr__(self, "status_forcelist", frozenset(checked))
        check_seconds("backoff_factor", self.backoff_factor)
        check_seconds("backoff_max", self.backoff_max, allow_inf=True)
        check_seconds("backoff_jitter", self.backoff_jitter)
        check_bool("respect_retry_after_header", self.respect_retry_after_header)
        check_bool("raise_on_status", self.raise_on_status)
        check_bool("raise_on_redirect", self.raise_on_redirect)
        object.__setattr__(
            self,
            "remove_headers_on_redirect",
            _names("remove_headers_on_redirect", self.remove_headers_on_redirect, upper=False),
        )

    @classmethod
    def coerce(cls, name: str, value: object) -> Retry | None:
        """``value`` as a policy: a :class:`Retry`, an int (``Retry(total=n)``) or ``None``.

        Raises:
            TypeError, ValueError: a bad value (the message names ``name``).
        """
        if value is None or isinstance(value, Retry):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be a Retry, an int or None, got {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
        return cls(total=value)

    def backoff(self, consecutive: int, rng: random.Random) -> float:
        """Seconds to sleep after ``consecutive`` failed attempts in a row."""
        if consecutive <= 1 or self.backoff_factor == 0:
            value = 0.0
        else:
            value = self.backoff_factor * 2.0 ** (consecutive - 1)
        if self.backoff_jitter:
            value += rng.random() * self.backoff_jitter
        return max(0.0, min(self.backoff_max, value))


def _names(name: str, value: object, *, upper: bool) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be an iterable of str, got {value!r}")
    out: set[str] = set()
    for item in value:
        if not isinstance(item, str) or not item:
            raise TypeError(f"{name} must hold non-empty str, got {item!r}")
        out.add(item.upper() if upper else item.lower())
    return frozenset(out)


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (delay-seconds or an HTTP date).

    Returns:
        The seconds (0 for a date in the past), or ``None`` when it is malformed.
    """
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


class RetryState:
    """What is left of one request's retries, and what happened so far.

    Args:
        policy: the request's policy, or ``None``: no retries (errors
            propagate as they are; redirects are capped at
            :data:`DEFAULT_MAX_REDIRECTS`).
        rng: randomness for the backoff jitter.
    """

    def __init__(self, policy: Retry | None, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        self.history: list[RequestHistory] = []
        self._left: dict[str, float] = {}
        self._consecutive = 0
        if policy is None:
            self._left = {"total": math.inf, "redirect": DEFAULT_MAX_REDIRECTS}
            return
        for name in ("total", "connect", "read", "status", "other", "redirect"):
            count = getattr(policy, name)
            self._left[name] = math.inf if count is None else count

    def _spend(self, kind: str) -> bool:
        """Count one retry of ``kind``; False when it exceeds a cap."""
        self._left["total"] -= 1
        if kind in self._left:
            self._left[kind] -= 1
        return self._left["total"] >= 0 and self._left.get(kind, 0) >= 0

    def _exhausted(self, message: str, url: str, reason: BaseException | None) -> MaxRetryError:
        return MaxRetryError(message, url, reason, tuple(self.history))

    def method_allowed(self, method: str) -> bool:
        allowed = self.policy.allowed_methods if self.policy is not None else None
        return self.policy is not None and (allowed is None or method in allowed)

    def on_error(
        self, kind: Kind, method: str, url: str, exc: BaseException, replayable: bool
    ) -> float:
        """An attempt failed with ``exc``: the seconds to sleep before retrying.

        Raises:
            BaseException: ``exc`` itself, when it is not to be retried (no
                policy, a read error on a method or body that cannot be sent
                again).
            MaxRetryError: retryable, but out of retries (from ``exc``).
        """
        if self.policy is None:
            raise exc
        if kind != "connect" and not (replayable and self.method_allowed(method)):
            raise exc
        ok = self._spend(kind)
        self._consecutive += 1
        slept = self.policy.backoff(self._consecutive, self._rng) if ok else 0.0
        self.history.append(RequestHistory(method, url, kind, error=exc, slept=slept))
        if not ok:
            raise self._exhausted(
                f"{method} {url}: out of retries after {len(self.history)} attempts; the last "
                f"failed with a {kind} error: {exc!r}",
                url,
                exc,
            ) from exc
        return slept

    def wants_status_retry(self, method: str, status: int, has_retry_after: bool) -> bool:
        """Whether a response with ``status`` is one to retry (urllib3 ``is_retry``)."""
        policy = self.policy
        if policy is None or not self.method_allowed(method):
            return False
        if status in policy.status_forcelist:
            return True
        return (
            policy.respect_retry_after_header
            and has_retry_after
            and status in RETRY_AFTER_STATUSES
            and self._left["total"] > 0
        )

    def on_status(
        self, method: str, url: str, status: int, retry_after: str | None
    ) -> float | None:
        """A response to retry came: the seconds to sleep, or ``None`` to return it.

        Raises:
            MaxRetryError: out of status retries and ``raise_on_status``.
        """
        assert self.policy is not None
        ok = self._spend("status")
        self._consecutive += 1
        slept = 0.0
        if ok:
            slept = self._sleep_for(status, retry_after)
        self.history.append(RequestHistory(method, url, "status", status=status, slept=slept))
        if ok:
            return slept
        if self.policy.raise_on_status:
            raise self._exhausted(
                f"{method} {url}: out of retries after {len(self.history)} attempts; the last "
                f"got status {status}",
                url,
                None,
            )
        return None

    def _sleep_for(self, status: int, retry_after: str | None) -> float:
        policy = self.policy
        assert policy is not None
        if policy.respect_retry_after_header and retry_after and status in RETRY_AFTER_STATUSES:
            seconds = parse_retry_after(retry_after)
            if seconds is not None:
                return seconds
        return policy.backoff(self._consecutive, self._rng)

    def on_redirect(self, method: str, url: str, status: int, location: str) -> bool:
        """A redirect to follow: True to follow it, False to return the response.

        Redirects do not count as failures for the backoff.

        Raises:
            MaxRetryError: too many redirects and ``raise_on_redirect`` (or no policy).
        """
        ok = self._spend("redirect")
        self._consecutive = 0
        self.history.append(
            RequestHistory(method, url, "redirect", status=status, redirect_location=location)
        )
        if ok:
            return True
        if self.policy is None or self.policy.raise_on_redirect:
            raise self._exhausted(
                f"{method} {url}: too many redirects ({len(self.history)} followed, the last "
                f"to {location!r}); the limit is Retry(redirect=...) or total",
                url,
                None,
            )
        return False
