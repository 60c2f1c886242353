"""Run untrusted Python in a bubblewrap sandbox, one test at a time.

Layers, outermost first (each one alone would stop most attacks; together they are the contract in
shared/design/verifiers.md):

* **A real unprivileged uid per slot.** As root, ``bwrap --unshare-user --uid N`` keeps host uid 0,
  and the kernel never enforces ``RLIMIT_NPROC`` for root, so a thread bomb runs free. Each
  concurrent slot therefore gets its own unused host uid (claimed with a lock file so two trainer
  processes on one host never share one), and ``bwrap`` is started already switched to it
  (``subprocess`` ``user=/group=/extra_groups=[]``, the same ``setreuid`` that
  ``setpriv --reuid --regid --clear-groups`` does, without an extra exec).
* **Namespaces** (``--unshare-all``: user, pid, net, ipc, uts, cgroup): no network, no view of host
  processes, ``kill -1`` reaches only the sandbox. The filesystem is a fresh read-only root with
  ``/usr`` (and the ``/bin``, ``/lib*`` links) bound read-only, a read-only ``/dev`` with the
  standard nodes, a private size-capped tmpfs ``/tmp``,
  and ``/sandbox`` holding the program and the harness read-only. No ``/etc``, no home, an empty
  environment. ``--as-pid-1`` makes the program the namespace's init: when it exits the kernel
  kills everything left inside (daemons, grandchildren holding stdout), and no orphaned bwrap
  reaper is left as a zombie charged to the slot's uid.
* **rlimits** set by the harness on itself before any untrusted code runs: CPU, address space,
  processes (per uid, counted inside the sandbox's user namespace), file size, open files, no core.
* **The parent**: a wall-clock deadline; on expiry every process of the slot's uid is SIGKILLed.
  stdout/stderr are read without deadlock (one ``selectors`` loop that also feeds stdin) and
  capped; the expected output never enters the sandbox.

If bubblewrap or user namespaces are missing, ``Sandbox()`` raises ``SandboxUnavailable`` naming the
fix. ``unsafe=True`` (rlimits and the uid switch only, no namespaces) exists for machines where
namespaces cannot be enabled; it logs a warning on every batch and is never chosen silently.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

from reward.code import procs

log = logging.getLogger(__name__)

HARNESS_SOURCE = (Path(__file__).with_name("_harness_main.py")).read_bytes()

ENABLE_HINT = (
    "Code rewards need bubblewrap and unprivileged user namespaces. Fix: `apt-get install bubblewrap` "
    "(scripts/setup_env.sh does it); enable user namespaces with `sysctl -w user.max_user_namespaces=15000` "
    "(Debian/older kernels also `sysctl -w kernel.unprivileged_userns_clone=1`; Ubuntu >= 23.10 "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`); inside Docker run the container with "
    "`--security-opt seccomp=unconfined --security-opt apparmor=unconfined` or `--privileged`. "
    "Only if that is impossible: set ASPO_SANDBOX_UNSAFE=1 (rlimits only, NOT safe against hostile code)."
)


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run on this machine; the message says how to fix it."""


@dataclass
class RunResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    wall_s: float
    timed_out: bool = False
    output_limited: bool = False
    sandbox_error: str | None = None  # set when the sandbox itself failed, not the program


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 1 << 30
    max_processes: int = 32
    max_file_bytes: int = 16 << 20
    max_open_files: int = 64
    max_output_bytes: int = 16 << 20
    max_stderr_bytes: int = 64 << 10
    tmp_bytes: int = 64 << 20


_SETUP_PREFIXES = (b"bwrap: ",)


class _UidSlots:
    """Claims ``n`` unused uids for this process (lock files) and hands them to threads."""

    def __init__(self, n: int, base: int, span: int) -> None:
        lock_dir = Path(os.environ.get("ASPO_SANDBOX_LOCK_DIR") or ("/run/aspo-sandbox" if os.access("/run", os.W_OK) else os.path.join(tempfile.gettempdir(), "aspo-sandbox")))
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._fds: list[int] = []
        self.uids: list[int] = []
        for uid in range(base, base + span):
            if len(self.uids) == n:
                break
            try:
                pwd.getpwuid(uid)
                continue  # a real account: not ours to use
            except KeyError:
                pass
            fd = os.open(lock_dir / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # another process (or sandbox) holds it
            if procs.pids_of_uid(uid):
                # Someone runs as this uid without our lock (another tool, a container's mapped
                # uid): not ours to use, and certainly not ours to kill.
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                continue
            self._fds.append(fd)
            self.uids.append(uid)
        if len(self.uids) < n:
            self.close()
            raise SandboxUnavailable(
                f"could not claim {n} unused uids in [{base}, {base + span}) for sandbox slots; "
                f"set ASPO_SANDBOX_UID_BASE to a free range"
            )
        self._free = list(self.uids)
        self._cond = threading.Condition()

    def acquire(self) -> int:
        with self._cond:
            while not self._free:
                self._cond.wait()
            return self._free.pop()

    def release(self, uid: int) -> None:
        with self._cond:
            self._free.append(uid)
            self._cond.notify()

    def close(self) -> None:
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []


class _SharedSlots:
    """Non-root: every slot runs as the caller's uid (the kernel allows no other); a semaphore
    still bounds concurrency."""

    def __init__(self, n: int) -> None:
        self.uids = [os.getuid()] * n
        self._sem = threading.BoundedSemaphore(n)

    def acquire(self) -> int:
        self._sem.acquire()
        return os.getuid()

    def release(self, uid: int) -> None:
        self._sem.release()

    def close(self) -> None:
        pass


def _root_layout() -> list[str]:
    """Read-only system dirs: /usr, plus /bin, /sbin, /lib* as the host has them (links or dirs)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def _interpreter_binds(python: str) -> list[str]:
    """An interpreter outside /usr (pyenv, conda) is bound read-only at its install prefix."""
    real = os.path.realpath(python)
    if real.startswith("/usr/"):
        return []
    prefix = os.path.dirname(os.path.dirname(real))
    return ["--ro-bind", prefix, prefix]


class Sandbox:
    """A pool of ``slots`` sandboxes; ``run`` is thread-safe and blocks for a free slot."""

    def __init__(
        self,
        slots: int,
        limits: Limits = Limits(),
        python: str = "/usr/bin/python3",
        uid_base: int = 61000,
        uid_span: int = 1000,
        unsafe: bool = False,
    ) -> None:
        self.limits = limits
        self.python = python
        self.unsafe = unsafe
        self.is_root = os.geteuid() == 0
        self._last_warning = 0.0
        if not os.path.isfile(python) or not os.access(python, os.X_OK):
            raise SandboxUnavailable(
                f"sandbox interpreter {python!r} not found; install python3 (apt-get install python3) "
                f"or set ASPO_REWARD_CODE_PYTHON to a Python >= 3.8"
            )
        self.bwrap = shutil.which("bwrap")
        if not unsafe and self.bwrap is None:
            raise SandboxUnavailable("bubblewrap (`bwrap`) is not installed. " + ENABLE_HINT)
        self._base_nproc = 0
        if self.is_root:
            self._slots: _UidSlots | _SharedSlots = _UidSlots(slots, uid_base, uid_span)
        else:
            self._slots = _SharedSlots(slots)
            if unsafe:
                # Without namespaces the per-uid count includes all of this user's processes.
                self._base_nproc = _thread_count_of_uid(os.getuid())
        self._fixed = [] if unsafe else self._bwrap_fixed_args()
        self._workroot = tempfile.mkdtemp(prefix="aspo-sandbox-")
        os.chmod(self._workroot, 0o711)
        # Removed on close(), and at garbage collection or interpreter exit if nobody closed us.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._workroot, True)
        if unsafe:
            log.warning("reward sandbox: UNSAFE mode (rlimits only, no namespaces); do not run untrusted code like this")
            return
        try:
            self.self_check()
        except BaseException:
            self.close()  # give the claimed uids back
            raise

    # ----------------------------------------------------------------------------------- set-up
    def _bwrap_fixed_args(self) -> list[str]:
        lim = self.limits
        return [
            self.bwrap,
            "--unshare-all", "--unshare-user", "--disable-userns",
            "--die-with-parent", "--new-session", "--as-pid-1",
            "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
            "--setenv", "HOME", "/tmp",
            *_root_layout(),
            *_interpreter_binds(self.python),
            # /dev is a fresh tmpfs with the standard nodes; read-only, or a program could fill RAM
            # through it (only /tmp is size-capped). Device nodes stay usable on a read-only mount.
            "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
            "--size", str(lim.tmp_bytes), "--tmpfs", "/tmp",
        ]

    def workdir(self, program: str) -> str:
        """A read-only-to-the-sandbox directory with the program and the harness."""
        d = tempfile.mkdtemp(dir=self._workroot)
        os.chmod(d, 0o755)
        for name, data in (("solution.py", program.encode("utf-8", "replace")), ("harness.py", HARNESS_SOURCE)):
            p = os.path.join(d, name)
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, 0o644)
        return d

    @staticmethod
    def remove_workdir(d: str) -> None:
        shutil.rmtree(d, ignore_errors=True)

    def _rlimits(self, timeout_s: float) -> dict[str, int]:
        lim = self.limits
        cpu = int(math.ceil(timeout_s)) + 1
        return {
            "RLIMIT_CPU": cpu,
            "RLIMIT_AS": lim.memory_bytes,
            "RLIMIT_NPROC": lim.max_processes + self._base_nproc,
            "RLIMIT_FSIZE": lim.max_file_bytes,
            "RLIMIT_NOFILE": lim.max_open_files,
            "RLIMIT_CORE": 0,
        }

    def _argv(self, workdir: str, mode: str, fn_name: str | None, timeout_s: float) -> tuple[list[str], str]:
        limits = ",".join(f"{k}={v}" for k, v in self._rlimits(timeout_s).items())
        harness_args = [mode, fn_name or "-", limits]
        if self.unsafe:
            return [self.python, "-I", "-B", os.path.join(workdir, "harness.py"), *harness_args,
                    os.path.join(workdir, "solution.py")], workdir
        argv = [*self._fixed, "--ro-bind", workdir, "/sandbox", "--chdir", "/tmp", "--remount-ro", "/", "--",
                self.python, "-I", "-B", "/sandbox/harness.py", *harness_args]
        return argv, "/"

    # -------------------------------------------------------------------------------------- run
    def run(self, workdir: str, stdin: bytes, timeout_s: float, mode: str = "stdin",
            fn_name: str | None = None) -> RunResult:
        """Run the program in ``workdir`` once, feeding ``stdin``; never raises for program faults."""
        uid = self._slots.acquire()
        try:
            return self._run_as(uid, workdir, stdin, timeout_s, mode, fn_name)
        finally:
            self._slots.release(uid)

    def _run_as(self, uid: int, workdir: str, stdin: bytes, timeout_s: float, mode: str,
                fn_name: str | None) -> RunResult:
        argv, cwd = self._argv(workdir, mode, fn_name, timeout_s)
        kwargs = {}
        if self.is_root:
            kwargs = {"user": uid, "group": uid, "extra_groups": []}
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, start_new_session=True, close_fds=True, **kwargs,
            )
        except OSError as e:
            return RunResult(None, b"", b"", 0.0, sandbox_error=f"could not start the sandbox: {e}")
        deadline = t0 + timeout_s
        try:
            out, err, timed_out, limited = _communicate(proc, stdin, deadline, self.limits)
        finally:
            # Always make sure nothing of this run survives, whatever happened above.
            self._kill_tree(proc, uid)
        wall = time.monotonic() - t0
        rc = proc.returncode
        setup_error = None
        if not self.unsafe and rc not in (0, None) and not out and err.startswith(_SETUP_PREFIXES):
            setup_error = err[:500].decode("utf-8", "replace").strip()
        return RunResult(rc, out, err, wall, timed_out=timed_out, output_limited=limited, sandbox_error=setup_error)

    def _kill_tree(self, proc: subprocess.Popen, uid: int) -> None:
        """Kill the program and everything it started, then reap ``bwrap``.

        Root: SIGKILL every process of the slot's uid except bwrap itself first, so bwrap sees its
        child die and reaps it (killing bwrap first would orphan the namespace's init as a zombie
        charged to the uid). Then bwrap exits on its own; if not, it is killed too.
        """
        if proc.poll() is None or self.unsafe:
            if self.is_root:
                procs.kill_uid(uid, exclude=() if self.unsafe else (proc.pid,))
            else:
                # Not root: no uid of our own to sweep. Killing bwrap's group kills the namespace's
                # init through --die-with-parent, and with it everything inside.
                _killpg(proc.pid)
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)
                if self.is_root:
                    procs.kill_uid(uid)
                try:
                    proc.wait(timeout=5.0)
                except subprocess.TimeoutExpired:
                    log.error("reward sandbox: pid %d did not die after SIGKILL", proc.pid)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    # -------------------------------------------------------------------------------- checks
    def warn_if_unsafe(self, every_s: float = 0.0) -> None:
        """Unsafe mode logs a warning on every batch (``every_s`` rate-limits single calls)."""
        if not self.unsafe:
            return
        now = time.monotonic()
        if every_s and now - self._last_warning < every_s:
            return
        self._last_warning = now
        log.warning("reward sandbox: UNSAFE mode, untrusted code runs with rlimits only (no namespaces). "
                    "Unset ASPO_SANDBOX_UNSAFE once bubblewrap and user namespaces are available.")

    def self_check(self) -> dict:
        """Run a probe inside the sandbox and verify it is really isolated; raise if not.

        Checked from the inside: pid namespace (the probe is pid 1 and sees only itself), a
        non-root uid, no network interface but loopback, no /etc/shadow, no /root or /home, an
        empty environment, read-only root. Tests that would endanger the host if the sandbox were
        broken (``kill -1``, fork bombs) run only after this passes.
        """
        if self.unsafe:
            raise SandboxUnavailable("self_check: unsafe mode has no namespaces to check")
        probe = r'''
import json, os
facts = {"pid": os.getpid(), "uid": os.getuid(),
         "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
         "net": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None,
         "shadow": os.path.exists("/etc/shadow"), "root_home": os.path.exists("/root"),
         "home": os.path.exists("/home"), "env": sorted(os.environ)}
try:
    open("/probe-write", "w"); facts["root_writable"] = True
except OSError:
    facts["root_writable"] = False
try:
    with open("/proc/net/dev") as f: facts["ifaces"] = sorted(l.split(":")[0].strip() for l in f.readlines()[2:])
except OSError:
    facts["ifaces"] = None
print(json.dumps(facts))
'''
        d = self.workdir(probe)
        try:
            res = self.run(d, b"", timeout_s=30.0)
        finally:
            self.remove_workdir(d)
        if res.sandbox_error or res.returncode != 0:
            detail = res.sandbox_error or res.stderr[-500:].decode("utf-8", "replace")
            raise SandboxUnavailable(f"the sandbox failed to start a program ({detail!r}). " + ENABLE_HINT)
        try:
            facts = json.loads(res.stdout)
        except ValueError:
            raise SandboxUnavailable(f"sandbox probe printed {res.stdout[:200]!r}") from None
        problems = []
        if facts["pid"] != 1 or facts["pids"] != [1]:
            problems.append(f"no private pid namespace (pid {facts['pid']}, sees {len(facts['pids'])} pids)")
        if facts["uid"] == 0 and self.is_root:
            problems.append("runs as uid 0")
        if facts["ifaces"] not in (["lo"], []):
            problems.append(f"network interfaces visible: {facts['ifaces']}")
        if facts["shadow"] or facts["root_home"] or facts["home"]:
            problems.append("host files (/etc/shadow, /root or /home) visible")
        if facts["root_writable"]:
            problems.append("root filesystem writable")
        if set(facts["env"]) - {"PATH", "LANG", "HOME", "PWD", "LC_CTYPE"}:
            problems.append(f"environment not clean: {facts['env']}")
        if problems:
            raise SandboxUnavailable("sandbox isolation check failed: " + "; ".join(problems))
        return facts

    def close(self) -> None:
        self._slots.close()
        self._cleanup()


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _thread_count_of_uid(uid: int) -> int:
    n = 0
    for pid in procs.pids_of_uid(uid):
        try:
            n += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return n


def _communicate(proc: subprocess.Popen, stdin: bytes, deadline: float, limits: Limits):
    """Feed stdin and drain stdout/stderr in one loop until EOF, the deadline or the output cap.

    One ``selectors`` loop, non-blocking writes: a program that never reads its input, or floods
    stdout, cannot block us. Returns (stdout, stderr, timed_out, output_limited).
    """
    sel = selectors.DefaultSelector()
    out, err = bytearray(), bytearray()
    view = memoryview(stdin)
    offset = 0
    timed_out = limited = False
    if stdin:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    exited_at = None
    try:
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                timed_out = proc.poll() is None or bool(sel.get_map())
                break
            if proc.poll() is not None:
                # The namespace dies with its init, so the pipes close promptly; unsafe mode has no
                # such guarantee (a daemon may hold stdout), so stop shortly after the exit.
                exited_at = exited_at or now
                if now - exited_at > 0.5:
                    break
            for key, _ in sel.select(timeout=min(deadline - now, 0.25)):
                f = key.fileobj
                if f is proc.stdin:
                    try:
                        n = os.write(f.fileno(), view[offset:offset + 65536])
                        offset += n
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, OSError):
                        offset = len(view)
                    if offset >= len(view):
                        sel.unregister(f)
                        f.close()
                    continue
                try:
                    chunk = os.read(f.fileno(), 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    sel.unregister(f)
                    continue
                if f is proc.stdout:
                    out += chunk
                    if len(out) > limits.max_output_bytes:
                        limited = True
                        del out[limits.max_output_bytes:]
                        return bytes(out), bytes(err), False, True
                elif len(err) < limits.max_stderr_bytes:
                    err += chunk[: limits.max_stderr_bytes - len(err)]
        if not timed_out:
            remaining = deadline - time.monotonic()
            try:
                proc.wait(timeout=max(0.0, remaining))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        sel.close()
    return bytes(out), bytes(err), timed_out, limited
