"""A loopback TCP relay that injects network faults between a client and the server.

Used by the reliability tests (RELIABILITY.md §8.1, "Proxy"): the client
connects to the proxy, the proxy to the real server, and the test switches
the relay's mode at any moment; a mode applies at once to live connections
as well as to the ones accepted afterwards::

    with FaultProxy("127.0.0.1", server_port) as proxy:
        conn = psycopg3_sync.connect(proxy.dsn(dsn))
        proxy.freeze()

Design rules:

1. One background thread owns every socket and does all the relaying, with
   non-blocking sockets and ``poll()``. Nothing blocks but that ``poll()``,
   so the proxy behaves the same whatever the client runs on (a blocking
   call, asyncio, trio) and a mode switch never waits for a stuck write.
2. A mode switch is applied by the calling thread, under the proxy's lock,
   once the relay thread has been woken (through a pipe) out of ``poll()``:
   a socket closed while ``poll()`` waits on it stays alive until ``poll()``
   returns, and a "closed" listener would still complete handshakes. When the
   method returns the switch is complete (``close``/``reset`` sockets are
   closed, ``deaf`` connects already hang) and the next relay step sees it.
3. The proxy never reads more than it can forward (a bounded buffer per
   direction), so a peer that stops reading pushes back on the other peer as
   TCP would, and ``freeze`` leaves unread data in the kernel's buffers:
   the kernel keeps acknowledging until the window closes, like a middlebox
   that stops forwarding but keeps the connection alive.
4. Loopback only: the listener binds 127.0.0.1 on a free port.

Positions used by ``corrupt`` and ``reset_after`` count the server→client
bytes of each connection from the moment the mode is set for connections
already open, and from the connection's start for connections accepted
later: ``corrupt(0)`` on a live connection flips the type byte of the next
message the server sends.

``deaf``: the listening socket stays bound (nothing else can take the port)
but is put back to ``listen(0)`` and no longer accepted from. Linux still
completes the handshake of ``backlog + 1`` connections on such a listener
(the accept queue takes one even with backlog 0), then drops further SYNs.
The proxy fills that queue itself with dummy connections (until one stays in
SYN_SENT), so every connect made by the test hangs in SYN retransmission,
which is what a client with a connect timeout must survive. Leaving ``deaf``
closes the dummies, discards what is queued and restores the backlog; a
connect still retrying its SYN then completes. ``close``/``reset`` close the
listener; a later ``forward()`` binds the same port again.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType

from psycopg3.conninfo import conninfo_to_dict, make_conninfo

# At most this much is read ahead of what the destination accepted.
_BUFFER_LIMIT = 256 * 1024
_RECV_SIZE = 64 * 1024
# Longest sleep of the relay thread when nothing is ready (mode switches wake it).
_IDLE_POLL = 0.2
# How long a dummy connect may take to count as "completed" when filling the
# deaf listener's accept queue.
_DUMMY_CONNECT_WAIT = 0.1
_MAX_DUMMIES = 8
_READ_EVENTS = select.POLLIN | select.POLLHUP | select.POLLERR
_WRITE_EVENTS = select.POLLOUT | select.POLLHUP | select.POLLERR


class Mode(Enum):
    FORWARD = "forward"
    FREEZE = "freeze"
    CLOSE = "close"
    RESET = "reset"
    DEAF = "deaf"
    TRICKLE = "trickle"
    CUT_AFTER = "cut_after"
    CORRUPT = "corrupt"
    RESET_AFTER = "reset_after"


@dataclass
class _Direction:
    """One way of a relayed connection: bytes read from ``src``, written to ``dst``."""

    src: socket.socket
    dst: socket.socket
    to_client: bool
    pending: bytearray = field(default_factory=bytearray)
    eof: bool = False
    # Bytes written to dst so far.
    relayed: int = 0
    # Trickle: no write before this monotonic time.
    next_write: float = 0.0
    # Stream positions (in relayed bytes) where a fault fires; None: none armed.
    corrupt_at: int | None = None
    reset_at: int | None = None
    cut_at: int | None = None
    # The last bytes read, so that cut_after finds a pattern split across reads.
    tail: bytes = b""


@dataclass
class _Link:
    client: socket.socket
    server: socket.socket
    to_server: _Direction
    to_client: _Direction
    done: bool = False


class FaultProxy:
    """A threaded loopback TCP relay to ``(host, port)`` with switchable faults.

    Use as a context manager: entering starts the listener and the relay
    thread; leaving stops the thread and closes every socket.

    Counters (totals over all connections): ``bytes_to_client``,
    ``bytes_to_server``, ``connections`` (connections accepted).
    """

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.host = "127.0.0.1"
        self.port = 0
        self._bytes_to_client = 0
        self._bytes_to_server = 0
        self._connections = 0
        self.mode = Mode.FORWARD
        self._lock = threading.RLock()
        # Mode switches wait for the relay thread to leave poll(): a socket
        # closed while poll() waits on it lives on (poll holds a reference to
        # the file) and a closed listener would still complete handshakes.
        self._changed = threading.Condition(self._lock)
        self._polling = False
        self._switching = 0
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None
        self._deaf_listener: socket.socket | None = None
        self._dummies: list[socket.socket] = []
        self._trickle = (0, 0.0)
        self._cut_pattern = b""
        self._corrupt_offset = 0
        self._reset_bytes = 0
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)

    # -- lifecycle -----------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._listen()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the relay thread and close every socket; idempotent."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(10)
        with self._lock:
            for link in list(self._links):
                self._drop(link, rst=False)
            self._close_listeners()
            if self._wake_r >= 0:
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = -1

    def dsn(self, dsn: str) -> str:
        """Return the conninfo *dsn* pointing at the proxy instead of its server."""
        params = conninfo_to_dict(dsn)
        params.pop("hostaddr", None)
        params["host"] = self.host
        params["port"] = str(self.port)
        return make_conninfo("", **params)

    # Read under the lock: the relay thread updates them after each write, and
    # a client may see its data before the count moves without it.
    @property
    def bytes_to_client(self) -> int:
        """Bytes relayed server→client, over all connections."""
        with self._lock:
            return self._bytes_to_client

    @property
    def bytes_to_server(self) -> int:
        """Bytes relayed client→server, over all connections."""
        with self._lock:
            return self._bytes_to_server

    @property
    def connections(self) -> int:
        """Connections accepted and relayed."""
        with self._lock:
            return self._connections

    @property
    def unread_from_clients(self) -> int:
        """Bytes the clients sent that the proxy has not read yet (frozen: a query in the void)."""
        with self._lock:
            unread = 0
            for link in self._links:
                if not link.done and link.client.fileno() >= 0:
                    buf = bytearray(struct.calcsize("i"))
                    fcntl.ioctl(link.client.fileno(), termios.FIONREAD, buf)
                    unread += struct.unpack("i", buf)[0]
            return unread

    # -- modes ---------------------------------------------------------

    def forward(self) -> None:
        """Relay both ways (the default); accept again after close/reset/deaf."""
        self._switch(Mode.FORWARD)

    def freeze(self) -> None:
        """Keep every socket open but relay nothing, either way."""
        self._switch(Mode.FREEZE)

    def close(self) -> None:
        """Send FIN on every relayed socket and stop accepting (connects refused)."""
        self._switch(Mode.CLOSE)

    def reset(self) -> None:
        """Send RST on every relayed socket (SO_LINGER 0) and stop accepting."""
        self._switch(Mode.RESET)

    def deaf(self) -> None:
        """Listen on the same port with backlog 0 and never accept: connects hang.

        Connections already relayed go on being relayed.
        """
        self._switch(Mode.DEAF)

    def trickle(self, nbytes: int, delay: float) -> None:
        """Relay at most *nbytes* per write, sleeping *delay* seconds between writes."""
        if nbytes < 1 or delay < 0:
            raise ValueError("trickle needs nbytes >= 1 and delay >= 0")
        self._switch(Mode.TRICKLE, lambda: setattr(self, "_trickle", (nbytes, delay)))

    def cut_after(self, pattern: bytes) -> None:
        """Once a client chunk containing *pattern* is relayed, close both sides (FIN)."""
        if not pattern:
            raise ValueError("cut_after needs a non-empty pattern")
        self._switch(Mode.CUT_AFTER, lambda: setattr(self, "_cut_pattern", pattern))

    def corrupt(self, offset: int) -> None:
        """Flip (xor 0xFF) the server→client byte at *offset*, once per connection."""
        if offset < 0:
            raise ValueError("corrupt needs an offset >= 0")
        self._switch(Mode.CORRUPT, lambda: setattr(self, "_corrupt_offset", offset))

    def reset_after(self, nbytes: int) -> None:
        """Reset both sides of a connection once *nbytes* went server→client on it."""
        if nbytes < 0:
            raise ValueError("reset_after needs nbytes >= 0")
        self._switch(Mode.RESET_AFTER, lambda: setattr(self, "_reset_bytes", nbytes))

    # -- internals: mode switching (caller's thread, under the lock) ----

    def _switch(self, mode: Mode, configure: Callable[[], None] | None = None) -> None:
        with self._changed:
            if self._stopping:
                raise RuntimeError("the proxy is stopped")
            self._switching += 1
            self._wake()
            try:
                while self._polling:
                    self._changed.wait()
                self._apply(mode, configure)
            finally:
                self._switching -= 1
                self._changed.notify_all()

    def _apply(self, mode: Mode, configure: Callable[[], None] | None) -> None:
        if configure is not None:
            configure()
        self.mode = mode
        if mode in (Mode.CLOSE, Mode.RESET):
            for link in list(self._links):
                self._drop(link, rst=mode is Mode.RESET)
            self._close_listeners()
        elif mode is Mode.DEAF:
            if self._listener is None and self._deaf_listener is None:
                self._listen()
            if self._listener is not None:
                self._listen_deaf()
        elif self._deaf_listener is not None:
            self._listen_again()
        elif self._listener is None:
            self._listen()
        for link in self._links:
            self._arm(link, fresh=False)

    def _arm(self, link: _Link, *, fresh: bool) -> None:
        # Place the faults of the current mode on the link's directions.
        to_client, to_server = link.to_client, link.to_server
        base = 0 if fresh else to_client.relayed + len(to_client.pending)
        to_client.corrupt_at = None
        to_client.reset_at = None
        to_server.cut_at = None
        to_server.tail = b""
        if self.mode is Mode.CORRUPT:
            to_client.corrupt_at = base + self._corrupt_offset
        elif self.mode is Mode.RESET_AFTER:
            to_client.reset_at = base + self._reset_bytes

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # forward() after close/reset binds the port again; TIME_WAIT must not stop it.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener

    def _listen_deaf(self) -> None:
        # The same socket keeps the port (no window where another could take
        # it): listen() again with backlog 0 and stop polling it.
        assert self._listener is not None
        self._listener.listen(0)
        self._deaf_listener, self._listener = self._listener, None
        # Fill the accept queue (see the module docstring): stop at the first
        # dummy whose handshake does not complete.
        for _ in range(_MAX_DUMMIES):
            dummy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            dummy.setblocking(False)
            dummy.connect_ex((self.host, self.port))
            _, writable, _ = select.select([], [dummy], [], _DUMMY_CONNECT_WAIT)
            if writable and dummy.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                self._dummies.append(dummy)
                continue
            dummy.close()
            break

    def _listen_again(self) -> None:
        # Leaving deaf: throw away the queued dummies, take the normal backlog.
        deaf = self._deaf_listener
        assert deaf is not None
        for dummy in self._dummies:
            dummy.close()
        self._dummies = []
        deaf.setblocking(False)
        while True:
            try:
                queued, _ = deaf.accept()
            except BlockingIOError:
                break
            queued.close()
        deaf.listen(64)
        self._listener, self._deaf_listener = deaf, None

    def _close_listeners(self) -> None:
        for sock in (self._listener, self._deaf_listener, *self._dummies):
            if sock is not None:
                sock.close()
        self._listener = self._deaf_listener = None
        self._dummies = []

    def _drop(self, link: _Link, *, rst: bool) -> None:
        # FIN: shut down the write side, discard what the peer sent (closing
        # with unread data would send RST instead), then close.
        if link.done:
            return
        link.done = True
        for sock in (link.client, link.server):
            try:
                if rst:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_WR)
                    _discard_input(sock)
            except OSError:
                pass
            sock.close()
        self._links.remove(link)

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # Already woken (pipe full) or stopped.

    # -- internals: the relay thread ------------------------------------

    def _run(self) -> None:
        poller = select.poll()
        registered: dict[int, int] = {}
        while True:
            with self._changed:
                while self._switching and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                wanted, timeout = self._interest()
                self._polling = True
            try:
                for fd in list(registered):
                    if fd not in wanted:
                        poller.unregister(fd)
                        del registered[fd]
                for fd, events in wanted.items():
                    if registered.get(fd) != events:
                        poller.register(fd, events)
                        registered[fd] = events
                ready = dict(poller.poll(timeout * 1000))
            finally:
                with self._changed:
                    self._polling = False
                    self._changed.notify_all()
            with self._lock:
                if self._stopping:
                    return
                if ready.get(self._wake_r):
                    _discard_pipe(self._wake_r)
                if not self._switching:
                    self._step(ready)

    def _interest(self) -> tuple[dict[int, int], float]:
        wanted: dict[int, int] = {self._wake_r: select.POLLIN}
        timeout = _IDLE_POLL
        if self._listener is not None:
            wanted[self._listener.fileno()] = select.POLLIN
        if self.mode is Mode.FREEZE:
            return wanted, timeout
        now = time.monotonic()
        for link in self._links:
            for direction in (link.to_server, link.to_client):
                if not direction.eof and len(direction.pending) < _BUFFER_LIMIT:
                    fd = direction.src.fileno()
                    wanted[fd] = wanted.get(fd, 0) | _READ_EVENTS
                if direction.pending:
                    if direction.next_write > now:
                        timeout = min(timeout, direction.next_write - now)
                    else:
                        fd = direction.dst.fileno()
                        wanted[fd] = wanted.get(fd, 0) | _WRITE_EVENTS
        return wanted, max(timeout, 0.0)

    def _step(self, ready: dict[int, int]) -> None:
        if self._listener is not None and ready.get(self._listener.fileno()):
            self._accept()
        if self.mode is Mode.FREEZE:
            return
        for link in list(self._links):
            for direction in (link.to_server, link.to_client):
                if link.done:
                    break
                if ready.get(direction.src.fileno()) and not direction.eof:
                    self._read(link, direction)
                if not link.done and direction.pending:
                    self._write(link, direction)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        try:
            server = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(
            client,
            server,
            to_server=_Direction(client, server, to_client=False),
            to_client=_Direction(server, client, to_client=True),
        )
        self._connections += 1
        self._links.append(link)
        self._arm(link, fresh=True)

    def _read(self, link: _Link, direction: _Direction) -> None:
        try:
            data = direction.src.recv(_RECV_SIZE)
        except BlockingIOError:
            return
        except OSError:
            # The peer reset: pass the reset on to the other side.
            self._drop(link, rst=True)
            return
        if not data:
            direction.eof = True
            if not direction.pending:
                self._half_close(link, direction)
            return
        if self.mode is Mode.CUT_AFTER and not direction.to_client:
            seen = direction.tail + data
            if direction.cut_at is None and self._cut_pattern in seen:
                direction.cut_at = direction.relayed + len(direction.pending) + len(data)
            direction.tail = seen[-len(self._cut_pattern) :]
        direction.pending += data

    def _write(self, link: _Link, direction: _Direction) -> None:
        if direction.next_write > time.monotonic():
            return
        chunk = memoryview(direction.pending)
        if self.mode is Mode.TRICKLE:
            chunk = chunk[: self._trickle[0]]
        for limit in (direction.reset_at, direction.cut_at):
            if limit is not None:
                chunk = chunk[: max(limit - direction.relayed, 0)]
        corrupt_at = direction.corrupt_at
        if corrupt_at is not None and 0 <= corrupt_at - direction.relayed < len(chunk):
            index = corrupt_at - direction.relayed
            direction.pending[index] ^= 0xFF
            direction.corrupt_at = None
            chunk = memoryview(direction.pending)[: len(chunk)]
        sent = 0
        if chunk:
            try:
                sent = direction.dst.send(chunk)
            except BlockingIOError:
                return
            except OSError:
                chunk.release()
                self._drop(link, rst=True)
                return
        chunk.release()
        del direction.pending[:sent]
        direction.relayed += sent
        if direction.to_client:
            self._bytes_to_client += sent
        else:
            self._bytes_to_server += sent
        if self.mode is Mode.TRICKLE and self._trickle[1] > 0:
            direction.next_write = time.monotonic() + self._trickle[1]
        if direction.reset_at is not None and direction.relayed >= direction.reset_at:
            self._drop(link, rst=True)
        elif direction.cut_at is not None and direction.relayed >= direction.cut_at:
            self._drop(link, rst=False)
        elif direction.eof and not direction.pending:
            self._half_close(link, direction)

    def _half_close(self, link: _Link, direction: _Direction) -> None:
        # Pass an EOF on; once both ways ended the link is finished.
        try:
            direction.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        other = link.to_client if direction is link.to_server else link.to_server
        if other.eof and not other.pending:
            self._drop(link, rst=False)


def _discard_input(sock: socket.socket) -> None:
    sock.setblocking(False)
    while True:
        try:
            if not sock.recv(_RECV_SIZE):
                return
        except OSError as error:
            if error.errno not in (errno.EINTR,):
                return


def _discard_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
