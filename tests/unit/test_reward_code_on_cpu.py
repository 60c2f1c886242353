"""Code verifier: the bubblewrap sandbox against every hostile case of shared/design/verifiers.md,
positive cases in both ground-truth formats, and the pure helpers (extraction, parsing, comparison).

Each hostile case asserts: score 0, bounded wall time, no process of the sandbox's uids left,
nothing written outside the sandbox, no host secret readable. The cases that would hurt the host
if the sandbox were broken (fork bomb, ``kill -1``, killing the parent) run only after the
sandbox's own isolation check (``Sandbox.self_check``: private pid namespace, unprivileged uid, no
network, no host files) has passed in the same test.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest

import reward
from reward import _runtime
from reward.code import procs
from reward.code.compare import call_result_matches, stdout_matches, values_match
from reward.code.extract import extract_code
from reward.code.sandbox import SandboxUnavailable
from reward.code.testcases import BadGroundTruth, parse_tests

TIMEOUT_S = 2.0
# A hostile run may use its whole timeout, then be killed; a loaded 2-core box needs slack.
WALL_BOUND_S = TIMEOUT_S + 10.0


@pytest.fixture(scope="module")
def sandbox():
    reward.configure(code_timeout_s=TIMEOUT_S, code_slots=2, code_max_output_bytes=1 << 20)
    try:
        box = _runtime.sandbox()
    except SandboxUnavailable as e:  # the suite must say why, not skip silently
        pytest.fail(f"code sandbox unavailable on this machine: {e}")
    yield box
    reward.configure(code_timeout_s=reward.RewardConfig().code_timeout_s, code_slots=0,
                     code_max_output_bytes=reward.RewardConfig().code_max_output_bytes)


def fenced(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```\n"


def stdin_gt(pairs) -> str:
    return json.dumps({"inputs": [i for i, _ in pairs], "outputs": [o for _, o in pairs]})


DOUBLE = stdin_gt([("2\n", "4\n"), ("5\n", "10\n")])


def leftover_pids(box) -> list[int]:
    """Processes of the sandbox uids still alive, after a short grace for namespace teardown."""
    uids = sorted(set(box._slots.uids))
    deadline = time.monotonic() + 3.0
    while True:
        left = [p for u in uids if u != 0 and u != os.getuid() for p in procs.pids_of_uid(u)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def files_owned_by_sandbox(box) -> list[str]:
    """Host files a sandbox uid owns in the places a program would write to: there must be none.
    (Ownership rather than a before/after listing: other work on this machine writes there too.)"""
    uids = {u for u in box._slots.uids if u not in (0, os.getuid())}
    found = []
    for top in {"/tmp", "/var/tmp", "/dev/shm", str(Path.home()), os.getcwd()}:
        for dirpath, dirs, files in os.walk(top):
            if dirpath.count(os.sep) - top.count(os.sep) >= 2:
                dirs[:] = []
            for name in dirs + files:
                try:
                    if os.lstat(os.path.join(dirpath, name)).st_uid in uids:
                        found.append(os.path.join(dirpath, name))
                except OSError:
                    pass
    return found


@pytest.fixture(autouse=True)
def planted_secret(monkeypatch):
    """Every test runs with a secret in the trainer's environment (the sandbox must not see it)."""
    token = "SECRET-" + secrets.token_hex(16)
    monkeypatch.setenv("ASPO_REWARD_TEST_SECRET", token)
    return token


def assert_hostile(box, code: str, gt: str = DOUBLE, extra_info=None, reasons=None):
    t0 = time.monotonic()
    res = reward.compute_score("code", fenced(code), gt, extra_info)
    wall = time.monotonic() - t0
    assert res["score"] == 0.0 and res["acc"] is False, res
    assert wall < WALL_BOUND_S, f"took {wall:.1f}s: {res}"
    if reasons is not None:
        assert res["reason"] in reasons, res
    assert leftover_pids(box) == [], "sandbox processes survived the run"
    assert files_owned_by_sandbox(box) == [], "the program wrote on the host"
    return res


# ------------------------------------------------------------------------------ pure helpers
def test_extract_code_last_python_block_after_think():
    resp = ("<think>```python\nprint('draft')\n```</think>\nfirst\n```python\nprint(1)\n```\n"
            "then\n```py\nprint(2)\n```\n")
    assert extract_code(resp) == "print(2)"
    assert extract_code("<think>```python\nprint(1)\n```") is None  # unfinished reasoning
    assert extract_code("no code here") is None
    assert extract_code("```\nprint(3)\n```") == "print(3)"  # untagged only when no python block
    assert extract_code("```python\nprint(1)\n") is None  # unclosed fence
    assert extract_code("```python\n" * 20000) is None  # many unclosed fences: linear, no match


def test_parse_tests_formats():
    s = parse_tests(DOUBLE)
    assert s.mode == "stdin" and [c.stdin for c in s.cases] == [b"2\n", b"5\n"]
    c = parse_tests(json.dumps({"inputs": [[1, 2], "[3, 4]"], "outputs": [3, [7]], "fn_name": "add"}))
    assert c.mode == "call" and c.fn_name == "add"
    assert [json.loads(x.stdin) for x in c.cases] == [[1, 2], [3, 4]]
    lcb = [{"input": "[1, 2]\n3", "output": "6", "testtype": "functional"}]
    s = parse_tests(json.dumps(lcb), {"metadata": json.dumps({"func_name": "f"})})
    assert s.fn_name == "f" and json.loads(s.cases[0].stdin) == [[1, 2], 3] and s.cases[0].expected == 6
    s = parse_tests([{"input": "1\n", "output": "1\n", "testtype": "stdin"}])
    assert s.mode == "stdin"
    for bad in ("not json", json.dumps({"inputs": [1]}), json.dumps(lcb), json.dumps([{"input": "1", "output": "1", "testtype": "odd"}])):
        with pytest.raises(BadGroundTruth):
            parse_tests(bad)


def test_compare_rules():
    assert stdout_matches("1 2  \n3\n\n\n", "1 2\n3")
    assert stdout_matches("0.3333333\n", "0.333333333")
    assert not stdout_matches("0.34\n", "0.333333333")
    assert not stdout_matches("1\n2\n", "1\n")
    assert not stdout_matches("nan\n", "nan1\n")
    assert values_match([1, 2.0000000001, {"a": "x"}], [1, 2, {"a": "x"}])
    assert not values_match(True, 1) and not values_match([1], [1, 1])
    assert call_result_matches(5, [5]) and not call_result_matches(5, [6])


# ------------------------------------------------------------------------------- positives
def test_sandbox_is_isolated(sandbox):
    facts = sandbox.self_check()
    assert facts["pid"] == 1 and facts["uid"] != 0 and facts["ifaces"] == ["lo"]


def test_stdin_program_passes_all_tests(sandbox):
    res = reward.compute_score("code", fenced("print(int(input()) * 2)"), DOUBLE)
    assert res == {"score": 1.0, "acc": True, "pred": "2/2 tests passed", "reason": "correct"}


def test_wrong_on_one_test_scores_zero(sandbox):
    res = reward.compute_score("code", fenced("n = int(input())\nprint(4 if n == 2 else 0)"), DOUBLE)
    assert res["score"] == 0.0 and res["reason"] == "wrong" and res["pred"] == "1/2 tests passed"


def test_code_after_think_is_the_one_run(sandbox):
    resp = "<think>```python\nprint('nope')\n```</think>\n" + fenced("print(int(input()) * 2)")
    assert reward.compute_score("code", resp, DOUBLE)["score"] == 1.0
    assert reward.compute_score("code", "<think>" + fenced("print(int(input()) * 2)"), DOUBLE)["reason"] == "no_answer"


def test_call_based_and_solution_class(sandbox):
    gt = json.dumps({"inputs": [[1, 2], [3, 4]], "outputs": [[3, -1], [7, -1]], "fn_name": "addsub"})
    code = "def addsub(a, b):\n    print('debug noise')\n    return (a + b, -1)"
    assert reward.compute_score("taco", fenced(code), gt)["score"] == 1.0
    cls = "class Solution:\n    def addsub(self, a, b):\n        return [a + b, -1]"
    assert reward.compute_score("apps", fenced(cls), gt)["score"] == 1.0
    assert reward.compute_score("apps", fenced("def addsub(a, b):\n    return [a - b, -1]"), gt)["reason"] == "wrong"


def test_livecodebench_list_formats(sandbox):
    functional = [{"input": "[1, 2, 3]\n2", "output": "[2, 4, 6]", "testtype": "functional"},
                  {"input": "[]\n5", "output": "[]", "testtype": "functional"}]
    code = "from typing import List\nclass Solution:\n    def scale(self, nums: List[int], k: int) -> List[int]:\n        return [x * k for x in nums]"
    res = reward.compute_score("livecodebench", fenced(code), json.dumps(functional), {"metadata": {"func_name": "scale"}})
    assert res["score"] == 1.0, res
    stdin = [{"input": "3\n1 2 3\n", "output": "6\n", "testtype": "stdin"},
             {"input": "1\n7\n", "output": "7\n", "testtype": "stdin"}]
    code = "input()\nprint(sum(map(int, input().split())))"
    assert reward.compute_score("lcb_v5", fenced(code), json.dumps(stdin))["score"] == 1.0


def test_float_tolerance(sandbox):
    gt = stdin_gt([("3\n", "0.333333333\n")])
    assert reward.compute_score("code", fenced("print(1/int(input()))"), gt)["score"] == 1.0
    assert reward.compute_score("code", fenced("print(round(1/int(input()), 2))"), gt)["score"] == 0.0


def test_large_stdin_and_output_do_not_deadlock(sandbox):
    n = 100_000  # ~0.6 MB each way, under the 1 MiB output cap of these tests
    data = " ".join(map(str, range(n))) + "\n"
    gt = stdin_gt([(data, "\n".join(map(str, range(n))) + "\n")])
    code = "import sys\nprint('\\n'.join(sys.stdin.read().split()))"
    assert reward.compute_score("code", fenced(code), gt)["score"] == 1.0


def test_no_code_and_bad_ground_truth(sandbox):
    assert reward.compute_score("code", "I would loop.", DOUBLE)["reason"] == "no_answer"
    assert reward.compute_score("code", fenced("print(1)"), "{oops")["reason"] == "bad_ground_truth"


def test_threads_share_bounded_slots(sandbox):
    results = []

    def work():
        results.append(reward.compute_score("code", fenced("print(int(input()) * 2)"), DOUBLE)["score"])

    ts = [threading.Thread(target=work) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert results == [1.0] * 6


# -------------------------------------------------------------------------- hostile programs
@pytest.mark.parametrize("code", [
    "while True:\n    pass",
    "import time\ntime.sleep(1e9)",
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.1)",
    "print(10**(10**7))",
], ids=["infinite_loop", "sleep", "ignore_sigterm", "huge_power"])
def test_hangs_are_killed(sandbox, code):
    assert_hostile(sandbox, code, reasons={"timeout", "runtime_error"})


def test_fork_bomb(sandbox):
    sandbox.self_check()  # only in a verified namespace sandbox
    code = ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    assert_hostile(sandbox, code, reasons={"timeout", "runtime_error"})


def test_thread_bomb_is_capped_by_nproc(sandbox):
    sandbox.self_check()
    code = ("import threading, time\nn = 0\ntry:\n    while True:\n"
            "        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n        n += 1\n"
            "except Exception:\n    pass\nprint(n)")
    gt = stdin_gt([("", "4\n")])
    res = reward.compute_score("code", fenced(code), gt)
    assert res["score"] == 0.0 and leftover_pids(sandbox) == []
    # The cap, not the timeout, stopped it: the program printed its thread count in time.
    probe = sandbox.workdir(code)
    try:
        run = sandbox.run(probe, b"", TIMEOUT_S)
    finally:
        sandbox.remove_workdir(probe)
    assert run.stdout.strip().isdigit() and int(run.stdout) < reward.get_config().code_max_processes, run


def test_allocating_4gb(sandbox):
    assert_hostile(sandbox, "x = bytearray(5 * 1024 ** 3)\nprint(int(input()) * 2)", reasons={"runtime_error"})


def test_printing_1gb_is_capped(sandbox):
    code = "import sys\nchunk = 'x' * (1 << 20) + '\\n'\nfor _ in range(1024):\n    sys.stdout.write(chunk)"
    assert_hostile(sandbox, code, reasons={"output_limit", "timeout"})


def test_writing_100mb_file(sandbox, tmp_path):
    code = ("with open('/tmp/big', 'wb') as f:\n    for _ in range(100):\n        f.write(b'x' * (1 << 20))\n"
            "print(int(input()) * 2)")
    assert_hostile(sandbox, code, reasons={"runtime_error"})


def test_writing_outside_tmp(sandbox, tmp_path):
    targets = [str(tmp_path / "escape.txt"), "/usr/escape.txt", "/sandbox/escape.txt", "/escape.txt",
               str(Path.home() / "escape.txt"), "/proc/sys/kernel/hostname", "/dev/escape.txt", "/dev/shm/escape.txt"]
    code = ("import sys\nok = []\nfor p in %r:\n    try:\n        with open(p, 'w') as f:\n            f.write('pwned')\n"
            "        ok.append(p)\n    except OSError:\n        pass\nprint('escaped' if ok else 'contained')") % (targets,)
    gt = stdin_gt([("", "escaped\n")])
    assert_hostile(sandbox, code, gt)
    for p in targets:
        assert not (os.path.exists(p) and "escape" in p), p
    # and the program really ran: it sees its private /tmp as writable
    gt_ok = stdin_gt([("", "contained\n")])
    assert reward.compute_score("code", fenced(code), gt_ok)["score"] == 1.0


def test_host_secrets_are_unreadable(sandbox, planted_secret, tmp_path):
    token = planted_secret  # in the trainer's env; also planted in home and in a host tmp dir
    home_file = Path.home() / f".aspo-reward-test-secret-{os.getpid()}"
    home_file.write_text(token)
    (tmp_path / "secret.txt").write_text(token)
    try:
        # The program looks everywhere it can for the token's pattern and prints what it finds:
        # the test expects the token, so any leak would score 1.
        code = r'''
import os, re
pat = re.compile(r"SECRET-[0-9a-f]{32}")
found = set(pat.findall(" ".join("%s=%s" % kv for kv in os.environ.items())))
for root in ["/root", "/home", "/tmp", "/proc", "/etc", "/sandbox", TMP_PATH, HOME]:
    for dirpath, dirs, files in os.walk(root):
        if dirpath.count("/") > 4:
            dirs[:] = []
        for name in files:
            if name in ("environ", "cmdline") or "secret" in name:
                try:
                    with open(os.path.join(dirpath, name), "rb") as f:
                        found.update(pat.findall(f.read(1 << 16).decode("latin-1")))
                except OSError:
                    pass
try:
    found.add(open("/etc/shadow").read()[:5])
except OSError:
    pass
print(sorted(found)[0] if found else "nothing")
'''.replace("TMP_PATH", repr(str(tmp_path))).replace("HOME", repr(str(Path.home())))
        assert_hostile(sandbox, code, stdin_gt([("", token + "\n")]))
        assert_hostile(sandbox, "print(open('/etc/shadow').read()[:5])", stdin_gt([("", "root:\n")]))
    finally:
        home_file.unlink()


def test_network_is_unreachable(sandbox):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    port = srv.getsockname()[1]
    code = ("import socket\nok = False\nfor host in ['127.0.0.1', '8.8.8.8', '1.1.1.1']:\n    try:\n"
            "        s = socket.create_connection((host, %d if host == '127.0.0.1' else 53), timeout=0.5)\n"
            "        s.sendall(b'leak')\n        ok = True\n    except OSError:\n        pass\n"
            "print('connected' if ok else 'offline')") % port
    try:
        assert_hostile(sandbox, code, stdin_gt([("", "connected\n")]))
        with pytest.raises(socket.timeout):
            srv.accept()
    finally:
        srv.close()


def test_killing_parent_and_kill_minus_one(sandbox):
    sandbox.self_check()  # pid namespace verified before anything is signalled
    code = ("import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError:\n        pass\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
            "import subprocess\nsubprocess.run(['kill', '-9', '-1'])\nprint('still here')")
    before = os.getppid()
    assert_hostile(sandbox, code)
    assert os.getppid() == before  # our parent and we are alive
    assert reward.compute_score("code", fenced("print(int(input()) * 2)"), DOUBLE)["score"] == 1.0


def test_daemon_holding_stdout_does_not_hang(sandbox):
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        while True:\n            time.sleep(1)\n    os._exit(0)\nprint('parent done')")
    res = assert_hostile(sandbox, code)
    assert res["reason"] == "wrong"  # the parent's exit ended the run, not the timeout


@pytest.mark.parametrize("code", [
    "import sys\nsys.exit(0)\nprint(int(input()) * 2)",
    "import os\nos._exit(0)\nprint(int(input()) * 2)",
    "import os\nos.close(1)\nprint(int(input()) * 2)",
    "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1) + 1\nf(0)",
    "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x80\\n' * 3)",
    "print(4)",  # the expected output of test 1 without reading input; test 2 differs
], ids=["sys_exit", "os_exit", "close_stdout", "deep_recursion", "non_utf8", "hardcoded_output"])
def test_programs_that_fake_or_skip_output(sandbox, code):
    assert_hostile(sandbox, code)


def test_call_based_cheats(sandbox):
    gt = json.dumps({"inputs": [[1, 2], [5, 5]], "outputs": [3, 10], "fn_name": "add"})
    always_equal = ("class Any:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
                    "        return False\ndef add(a, b):\n    return Any()")
    int_subclass = ("class Yes(int):\n    def __eq__(self, other):\n        return True\n"
                    "def add(a, b):\n    return Yes(0)")
    monkeypatch_checker = (
        "import json, os, builtins\n_orig = json.dumps\n"
        "json.dumps = lambda *a, **k: '{\"ok\": true, \"value\": 3}'\n"
        "builtins.isinstance = lambda *a: True\n"
        "os.write(3, b'{\"ok\": true, \"value\": 3}\\n') if os.path.exists('/proc/self/fd/3') else None\n"
        "def add(a, b):\n    return 3")
    for code in (always_equal, int_subclass, monkeypatch_checker):
        assert_hostile(sandbox, code, gt)


def test_unsafe_mode_is_explicit_and_warns(caplog):
    from reward.code.sandbox import Sandbox

    box = Sandbox(1, unsafe=True, uid_base=62000)
    try:
        d = box.workdir("print(int(input()) * 2)")
        try:
            assert box.run(d, b"21\n", 5.0).stdout == b"42\n"
        finally:
            box.remove_workdir(d)
        caplog.clear()
        box.warn_if_unsafe()
        box.warn_if_unsafe()
        assert sum("UNSAFE" in r.getMessage() for r in caplog.records) == 2  # every batch
    finally:
        box.close()


def test_missing_bwrap_fails_with_instructions(monkeypatch):
    import reward.code.sandbox as sb

    monkeypatch.setattr(sb.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        sb.Sandbox(1, uid_base=62100)


def test_broken_namespaces_fail_at_start_up_with_instructions(monkeypatch, tmp_path):
    """bwrap present but unable to create namespaces (as with user namespaces disabled): the
    start-up probe fails loudly and names the sysctl, instead of running code unsandboxed."""
    import reward.code.sandbox as sb

    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(sb.shutil, "which", lambda name: str(fake))
    with pytest.raises(SandboxUnavailable, match="user.max_user_namespaces"):
        sb.Sandbox(1, uid_base=62200)
