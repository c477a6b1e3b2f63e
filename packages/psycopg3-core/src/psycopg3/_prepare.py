"""Automatic prepared statements: which queries to prepare, and when to forget them.

A query executed ``prepare_threshold`` times on a connection is prepared on
the server (a named statement, parsed and planned once) and executed by name
from then on; a bounded LRU keeps the prepared ones, and the oldest is
deallocated when a new one needs its place.

Must not: do I/O or import a concurrency framework. The cursor asks
``decide()`` before sending and reports back with ``prepared()`` and
``check_results()``; the statements to deallocate are handed out by
``take_evicted()`` for the connection to send.

Rules:

1. The key of a query is its SQL bytes and its parameter types: the same
   text with other types is another statement on the server.
2. ``prepare=True`` prepares at once, ``prepare=False`` never; None follows
   the threshold. ``prepare_threshold = None`` disables preparing (for
   PgBouncer in transaction mode, where statements do not survive).
3. Whatever the server says invalidates statements clears the cache:
   ``DISCARD ALL``/``DEALLOCATE ALL`` succeeding, or the error "cached plan
   must not change result type" (after a schema change).
4. In pipeline mode the ``PREPARE`` is sent without waiting: the name is
   *in flight* (``prepare_sent()``) and later executions in the same
   pipeline use it (the server runs them after the ``PREPARE``); it becomes
   prepared only when the server accepted it (``prepare_done()``). A refused
   or skipped ``PREPARE`` leaves nothing behind.
5. A statement can vanish without a command tag saying so (``DEALLOCATE``
   run in a ``DO`` block or a function): its execution by name fails with
   ``InvalidSqlStatementName`` (SQLSTATE 26000). That, or a stale plan (rule
   3) met by an execution by name, clears the cache, and ``check_results()``
   says so: ``execute()`` and
   ``executemany()`` run the query again, unnamed or prepared anew, if no
   transaction was open before it (the failure lost nothing of the user's).
   In a transaction, or a pipeline block, the error is raised; the next run
   prepares anew. Deallocating a statement already gone is not an error.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from .pq import ExecStatus, PGresult

__all__ = ["PrepareManager"]

Key = tuple[bytes, tuple[int, ...]]

_CLEARING_COMMANDS = (b"DISCARD ALL", b"DEALLOCATE ALL")
_STALE_PLAN_SQLSTATE = b"0A000"
_STALE_PLAN_MESSAGE = b"cached plan must not change result type"
#: invalid_sql_statement_name: "prepared statement … does not exist" (rule 5).
MISSING_STATEMENT_SQLSTATE = b"26000"


#: Executions of a query after which it is prepared, unless the connection says otherwise.
DEFAULT_PREPARE_THRESHOLD = 5


class PrepareManager:
    """The per-connection memory of executed and prepared queries."""

    __slots__ = (
        "prepare_threshold",
        "prepared_max",
        "_counts",
        "_names",
        "_in_flight",
        "_evicted",
        "_serial",
    )

    def __init__(
        self, prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD, prepared_max: int = 100
    ):
        #: Executions after which a query is prepared; None: never.
        self.prepare_threshold = prepare_threshold
        #: How many prepared statements to keep at most.
        self.prepared_max = prepared_max
        # Executions counted for queries not prepared yet (bounded too).
        self._counts: OrderedDict[Key, int] = OrderedDict()
        # Prepared statements: key -> name, least recently used first.
        self._names: OrderedDict[Key, bytes] = OrderedDict()
        # Pipeline mode: PREPAREs sent, not answered yet (rule 4).
        self._in_flight: dict[Key, bytes] = {}
        self._evicted: list[bytes] = []
        self._serial = 0

    def decide(
        self, key: Key, prepare: bool | None, executions: int = 1
    ) -> tuple[bytes | None, bool]:
        """Tell how to run a query: ``(name, must_prepare)``.

        ``(None, False)``: execute unnamed; ``(name, True)``: prepare it as
        ``name`` first; ``(name, False)``: already prepared, execute by name.
        ``executions``: how many times the caller is about to run it
        (``executemany``), all counted towards the threshold.
        """
        name = self._names.get(key)
        if name is not None:
            if prepare is False:
                return None, False
            self._names.move_to_end(key)
            return name, False
        name = self._in_flight.get(key)
        if name is not None and prepare is not False:
            return name, False
        if prepare is False or (prepare is None and self.prepare_threshold is None):
            return None, False
        if prepare is None:
            assert self.prepare_threshold is not None
            count = self._counts.pop(key, 0) + executions
            if count < self.prepare_threshold:
                self._counts[key] = count
                if len(self._counts) > self.prepared_max:
                    self._counts.popitem(last=False)
                return None, False
        self._serial += 1
        return b"_pg3_%d" % self._serial, True

    def decide_many(
        self, query: bytes, types_seq: Sequence[Sequence[int]]
    ) -> tuple[Key, bytes | None, bool, list[bool]]:
        """Tell how to run the statements of an ``executemany``.

        The statement is the first parameter set's (query and types); every
        set with the same types counts as one execution of it (rule 1: a
        None value changes the types, and so the statement).

        :return: ``(key, name, must_prepare)`` as ``decide()`` gives them,
            and for each set whether it runs by ``name``.
        """
        key = (query, tuple(types_seq[0]))
        same = [tuple(types) == key[1] for types in types_seq]
        name, must_prepare = self.decide(key, None, executions=sum(same))
        return key, name, must_prepare, same if name is not None else [False] * len(same)

    def prepared(self, key: Key, name: bytes) -> None:
        """Record that the server accepted ``name`` for ``key``."""
        self._counts.pop(key, None)
        self._names[key] = name
        while len(self._names) > self.prepared_max:
            _, old = self._names.popitem(last=False)
            self._evicted.append(old)

    def prepare_sent(self, key: Key, name: bytes) -> None:
        """Record a ``PREPARE`` sent in a pipeline, not answered yet (rule 4)."""
        self._in_flight[key] = name

    def prepare_done(self, key: Key, name: bytes, *, accepted: bool) -> None:
        """Record the server's answer to a pipelined ``PREPARE``."""
        if self._in_flight.get(key) == name:
            del self._in_flight[key]
        if accepted:
            self.prepared(key, name)

    @property
    def has_evicted(self) -> bool:
        """Whether statements wait to be deallocated (see ``take_evicted()``)."""
        return bool(self._evicted)

    def take_evicted(self) -> list[bytes]:
        """Return, and forget, the statements to deallocate on the server."""
        evicted, self._evicted = self._evicted, []
        return evicted

    def check_results(self, results: Sequence[PGresult], *, by_name: bool = False) -> bool:
        """Forget every statement if the results say the server dropped them.

        :param by_name: the results are those of an execution by name.
        :return: True if the statement executed by name was missing or stale (rule 5).
        """
        missing = False
        for result in results:
            status = result.status
            if status == ExecStatus.COMMAND_OK:
                if result.command_status in _CLEARING_COMMANDS:
                    self.clear(deallocate=False)
            elif status == ExecStatus.FATAL_ERROR:
                sqlstate = result.error_field(ord("C"))
                if sqlstate == _STALE_PLAN_SQLSTATE and _STALE_PLAN_MESSAGE in (
                    result.error_field(ord("M")) or b""
                ):
                    self.clear(deallocate=True)
                    missing |= by_name
                elif by_name and sqlstate == MISSING_STATEMENT_SQLSTATE:
                    # One gone without a word may mean all gone (DEALLOCATE
                    # ALL): forget them all rather than fail once per statement.
                    self.clear(deallocate=True)
                    missing = True
        return missing

    def clear(self, *, deallocate: bool) -> None:
        """Forget every prepared statement (deallocating them if still there)."""
        if deallocate:
            self._evicted.extend(self._names.values())
        self._names.clear()
        self._counts.clear()
        self._in_flight.clear()
