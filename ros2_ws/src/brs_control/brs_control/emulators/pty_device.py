"""A serial device on a pseudo-terminal, with wire-time emulation and fault injection.

The host side opens `device.path` exactly like a real adapter (pyserial, the Dynamixel SDK, ...);
the emulator side is a protocol handler that gets every byte the host sends and returns replies:

    def handler(data: bytes) -> list[bytes | Reply]:
        ...                                   # parse (any chunking), return 0..n replies

    with PtyDevice(handler, link="/tmp/brs_dxl_left_arm", baudrate=1_000_000) as dev:
        ...                                   # host opens /tmp/brs_dxl_left_arm
        dev.drop_next(2)                      # fault injection, see below
        dev.vanish(); dev.reappear()          # unplug / replug the "USB adapter"

Threading: one reader thread owns the pty file descriptors. It calls `handler` (never
concurrently with itself) and writes the replies. `send()` may be called from any thread for
unsolicited output (streaming devices). Control calls (vanish/reappear/stop) are executed by the
reader thread and return once done, so a test can rely on "after vanish() the port is gone".

Wire time: a pty moves bytes instantly whatever the baud rate. With `baudrate` set, every byte
costs `bits_per_byte / baudrate` seconds (10 bits: 8N1), and a reply is written when its last
byte would have arrived on a real line: after the request finished arriving, plus the reply's
`delay` (device turnaround), plus its own transmission time. Half duplex (RS-485/TTL Dynamixel
bus): requests and replies share one wire. Without `baudrate`, replies are written at once.

Faults (thread-safe, take effect on the next replies):
    drop_next(n) / drop_probability        reply never sent (host sees a timeout)
    corrupt_next(n) / corrupt_probability  last byte (a CRC byte for most protocols) flipped
    garbage_next(n, size, replace)         random bytes before (or instead of) the reply
    inject_garbage(size)                   random bytes now, unsolicited (line noise)
    mute(True)                             device stops answering until mute(False)
    vanish() / reappear()                  pty closed and symlink removed (the port disappears;
                                           open handles on the host get hang-up/EIO); then a
                                           fresh pty behind the same symlink
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import random
import select
import termios
import threading
import time
import tty
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_PR_SET_TIMERSLACK = 29


@dataclass(frozen=True)
class Reply:
    """A reply and its device turnaround delay (s) after the request finished arriving."""

    data: bytes
    delay: float = 0.0


Handler = Callable[[bytes], Iterable["bytes | bytearray | Reply"] | None]


def _precise_sleeps() -> None:
    """Ask the kernel for 1 us timer slack in this thread (default 50 us) so emulated wire
    timing is honest; harmless where unsupported."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _sleep_until(deadline: float) -> None:
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(remaining)


class PtyDevice:
    """Serial device emulated on a pty pair; see the module docstring."""

    def __init__(self, handler: Handler, link: str | None = None, *, baudrate: int | None = None,
                 bits_per_byte: int = 10, half_duplex: bool = True, name: str = "pty",
                 seed: int | None = None):
        self.handler = handler
        self.link = os.path.abspath(link) if link else None
        self.name = name
        self.baudrate = baudrate
        self.bits_per_byte = bits_per_byte
        self.half_duplex = half_duplex
        self.stats: Counter = Counter()
        # fault configuration (guarded by _fault_lock)
        self.drop_probability = 0.0
        self.corrupt_probability = 0.0
        self.garbage_probability = 0.0
        self._fault_lock = threading.Lock()
        self._drop_n = 0
        self._corrupt_n = 0
        self._garbage: deque[tuple[int, bool]] = deque()  # (size, replace) per upcoming reply
        self._muted = False
        self._rng = random.Random(seed)
        # pty state (owned by the reader thread once started; guarded by _io_lock)
        self._io_lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._rx_free = 0.0  # monotonic time the receive wire is free (== tx wire in half duplex)
        self._tx_free = 0.0
        # control channel to the reader thread
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._requests: deque[tuple[str, threading.Event]] = deque()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ properties

    @property
    def byte_time(self) -> float:
        """Seconds per byte on the emulated wire (0 without framing emulation)."""
        return self.bits_per_byte / self.baudrate if self.baudrate else 0.0

    @property
    def path(self) -> str:
        """What the host opens: the symlink if one was given, else the pty slave."""
        return self.link or self._slave_path

    @property
    def slave_path(self) -> str:
        """The current /dev/pts/N (changes after vanish/reappear)."""
        return self._slave_path

    @property
    def present(self) -> bool:
        return self._master is not None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> PtyDevice:
        """Open the pty (and symlink), start the reader thread; the port exists on return."""
        if self._thread is not None:
            return self
        if self.link and os.path.lexists(self.link) and not os.path.islink(self.link):
            raise FileExistsError(f"{self.link} exists and is not a symlink; refusing to replace it")
        self._open_pty()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-pty", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the reader thread, close the pty and remove the symlink."""
        if self._thread is None:
            return
        self._control("stop")
        self._thread.join(timeout=5)
        self._thread = None
        self._close_pty()

    close = stop

    def __enter__(self) -> PtyDevice:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __del__(self):
        for fd in (getattr(self, "_wake_r", None), getattr(self, "_wake_w", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ------------------------------------------------------------------ faults

    def drop_next(self, n: int = 1) -> None:
        with self._fault_lock:
            self._drop_n += n

    def corrupt_next(self, n: int = 1) -> None:
        with self._fault_lock:
            self._corrupt_n += n

    def garbage_next(self, n: int = 1, size: int = 16, replace: bool = False) -> None:
        """Random bytes before (replace=False) or instead of (replace=True) the next n replies."""
        with self._fault_lock:
            self._garbage.extend([(size, replace)] * n)

    def mute(self, muted: bool = True) -> None:
        """A silent device: every reply is dropped until mute(False)."""
        with self._fault_lock:
            self._muted = muted

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._drop_n = self._corrupt_n = 0
            self._garbage.clear()
            self._muted = False
            self.drop_probability = self.corrupt_probability = self.garbage_probability = 0.0

    def inject_garbage(self, size: int = 16) -> None:
        """Write `size` random bytes now (line noise between transactions)."""
        self._write(self._random_bytes(size))
        self.stats["garbage"] += 1

    def vanish(self) -> None:
        """Unplug: close the pty and remove the symlink. Returns when the port is gone."""
        self._control("vanish")

    def reappear(self) -> None:
        """Replug: a fresh pty behind the same symlink. Returns when the port exists again."""
        self._control("reappear")

    def send(self, data: bytes) -> bool:
        """Unsolicited output from any thread (streaming devices); faults apply. False if the
        device is absent or the reply was dropped."""
        out = self._apply_faults(bytes(data))
        if out is None:
            return False
        return self._write(out)

    # ------------------------------------------------------------------ internals

    def _random_bytes(self, size: int) -> bytes:
        with self._fault_lock:
            return bytes(self._rng.getrandbits(8) for _ in range(size))

    def _apply_faults(self, data: bytes) -> bytes | None:
        """The bytes to put on the wire for one reply, or None when it is dropped."""
        with self._fault_lock:
            rng = self._rng
            if self._muted or self._drop_n > 0 or (self.drop_probability and rng.random() < self.drop_probability):
                if not self._muted and self._drop_n > 0:
                    self._drop_n -= 1
                self.stats["dropped"] += 1
                return None
            if self._corrupt_n > 0 or (self.corrupt_probability and rng.random() < self.corrupt_probability):
                self._corrupt_n = max(0, self._corrupt_n - 1)
                data = data[:-1] + bytes([data[-1] ^ 0x5A]) if data else data
                self.stats["corrupted"] += 1
            garbage = None
            if self._garbage:
                garbage = self._garbage.popleft()
            elif self.garbage_probability and rng.random() < self.garbage_probability:
                garbage = (16, False)
            if garbage is not None:
                size, replace = garbage
                noise = bytes(rng.getrandbits(8) for _ in range(size))
                data = noise if replace else noise + data
                self.stats["garbage"] += 1
            return data

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)  # no echo, no line discipline: a byte pipe
        os.set_blocking(master, False)
        with self._io_lock:
            self._master, self._slave = master, slave
            self._slave_path = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.{os.getpid()}.tmp"
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            os.symlink(self._slave_path, tmp)
            os.replace(tmp, self.link)  # atomic: the host never sees a half-made link

    def _close_pty(self) -> None:
        with self._io_lock:
            if self.link:
                try:
                    if os.readlink(self.link) == self._slave_path:
                        os.unlink(self.link)
                except OSError:
                    pass
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None

    def _control(self, op: str) -> None:
        if threading.current_thread() is self._thread:
            self._do(op)
            return
        if self._thread is None or not self._thread.is_alive():
            self._do(op)
            return
        done = threading.Event()
        self._requests.append((op, done))
        os.write(self._wake_w, b"x")
        if not done.wait(5.0):
            raise TimeoutError(f"{self.name}: reader thread did not process {op!r}")

    def _do(self, op: str) -> None:
        if op == "vanish":
            if self._master is not None:
                self._close_pty()
                self.stats["vanished"] += 1
        elif op == "reappear":
            if self._master is None:
                self._open_pty()
                self._rx_free = self._tx_free = 0.0
        elif op == "stop":
            self._stopping = True

    def _write(self, data: bytes) -> bool:
        """Write all of `data` to the master; drop it if nobody drains the slave side."""
        with self._io_lock:
            fd = self._master
            if fd is None:
                return False
            view = memoryview(data)
            flushed = False
            while view:
                try:
                    n = os.write(fd, view)
                    view = view[n:]
                except BlockingIOError:
                    if flushed:  # nobody reads the port: bytes are lost, like on a real line
                        self.stats["overflow"] += 1
                        return False
                    termios.tcflush(self._slave, termios.TCIFLUSH)
                    flushed = True
                except OSError as exc:
                    log.debug("%s: write failed: %s", self.name, exc)
                    return False
            self.stats["tx_bytes"] += len(data)
            return True

    def _run(self) -> None:
        _precise_sleeps()
        while not self._stopping:
            fds = [self._wake_r] + ([self._master] if self._master is not None else [])
            try:
                readable, _, _ = select.select(fds, [], [], 0.5)
            except (OSError, ValueError):  # fd closed under us: re-evaluate
                continue
            if self._wake_r in readable:
                try:
                    os.read(self._wake_r, 64)
                except BlockingIOError:
                    pass
                while self._requests:
                    op, done = self._requests.popleft()
                    try:
                        self._do(op)
                    finally:
                        done.set()
                continue
            master = self._master
            if master is None or master not in readable:
                continue
            try:
                data = os.read(master, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno == errno.EIO:  # cannot happen while we hold the slave; be safe
                    time.sleep(0.01)
                    continue
                raise
            if data:
                self._receive(data, time.monotonic())

    def _receive(self, data: bytes, now: float) -> None:
        self.stats["rx_bytes"] += len(data)
        bt = self.byte_time
        rx_end = max(now, self._rx_free) + len(data) * bt
        self._rx_free = rx_end
        if self.half_duplex:
            self._tx_free = max(self._tx_free, rx_end)
        try:
            replies = self.handler(data) or ()
        except Exception:  # a protocol bug must not kill the device thread
            log.exception("%s: handler failed on %r", self.name, data)
            self.stats["handler_errors"] += 1
            return
        for reply in replies:
            if not isinstance(reply, Reply):
                reply = Reply(bytes(reply))
            out = self._apply_faults(reply.data)
            if out is None:
                continue
            if bt:
                start = max(self._tx_free, rx_end + reply.delay)
                end = start + len(out) * bt
                self._tx_free = end
                if self.half_duplex:
                    self._rx_free = max(self._rx_free, end)
                _sleep_until(end)
            elif reply.delay:
                _sleep_until(now + reply.delay)
            if self._write(out):
                self.stats["replies"] += 1
