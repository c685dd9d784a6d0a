"""Shared helpers for the tradewinkd integration tests.

Purpose: start a real tradewinkd in its own temporary working directory on a free loopback
port, collect its JSON log lines, and stop it by PID with SIGTERM, checking that it exits 0
and that no AddressSanitizer/UndefinedBehaviorSanitizer report appeared on stderr (the suite
also runs against the asan build). It also generates Python message classes for the standard
gRPC protos (health, reflection v1 and v1alpha) at test time with `protoc --python_out`, so
the clients are built from descriptors nobody in this project wrote.

Invariants: every wait is bounded; traffic goes to 127.0.0.1 only; the binary comes from the
TW_BINARY environment variable (set by CMake to $<TARGET_FILE:tradewinkd>) or `--binary PATH`.

Optional wrapper (tests/valgrind): TW_TEST_WRAPPER="valgrind --tool=memcheck ... --log-file=
DIR/vg.%p.log" is shlex-split and put in front of every tradewinkd command. While it is set,
the helper's own bounded waits (start, ready, stop, wait_for, run_once) are multiplied by
TIMEOUT_SCALE (TW_TEST_TIMEOUT_SCALE, default 10 with a wrapper), and after each process ends
its valgrind log (the --log-file pattern with %p = its PID, plus any ==PID== lines on stderr)
is checked for invalid accesses, uninitialised values, bad frees, definite leaks and a non-zero
ERROR SUMMARY. Unset, nothing changes: no wrapper, scale 1, no log check.
"""

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.environ.get(
    "TW_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
)
GRPC_PROTO_DIR = "/usr/share/grpc-proto"
WRAPPER = shlex.split(os.environ.get("TW_TEST_WRAPPER", ""))
# One multiplier for every wait in this helper; valgrind slows grpc start-up about tenfold.
TIMEOUT_SCALE = float(os.environ.get("TW_TEST_TIMEOUT_SCALE") or (10.0 if WRAPPER else 1.0))
START_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 10.0
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
)


def _take_binary_arg():
    """Remove `--binary PATH` from sys.argv (so unittest does not see it) and return PATH."""
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--binary" and i + 1 < len(argv):
            path = argv[i + 1]
            del argv[i : i + 2]
            return path
        if a.startswith("--binary="):
            del argv[i]
            return a.split("=", 1)[1]
    return None


_BINARY_ARG = _take_binary_arg()


def binary_path():
    path = _BINARY_ARG or os.environ.get("TW_BINARY")
    if not path:
        raise RuntimeError("set TW_BINARY or pass --binary PATH to the tradewinkd binary")
    if not os.access(path, os.X_OK):
        raise RuntimeError("tradewinkd binary not executable: %s" % path)
    return path


def base_env(extra=None):
    """The environment for tradewinkd: the caller's, minus any TW_*, proxy and sd_notify
    settings."""
    # A service manager's notify socket of the test runner itself must not reach the servers
    # it starts (test_sd_notify passes its own).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TW_") and "proxy" not in k.lower()
        and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    }
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env["TW_LISTEN"] = "127.0.0.1:0"
    env["TW_OPS_LISTEN"] = "127.0.0.1:0"
    env["TW_LOG_LEVEL"] = "info"
    env["TW_SHUTDOWN_GRACE_MS"] = "3000"
    # Every cached book is checked against the database before use (issue 18): a book that
    # drifted from what the store holds is logged as ledger_drift, which stop_and_check fails.
    env["TW_LEDGER_VERIFY"] = "1"
    # Functional tests send bursts; the limits themselves are tested with their own settings.
    for k in ("TW_RATE_PUBLIC", "TW_RATE_API", "TW_RATE_ORDERS", "TW_RATE_KEY_SUBMIT",
              "TW_RATE_AUTH_FAIL"):
        env[k] = "100000/s:100000"
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def sanitizer_reports(text):
    return [m for m in SANITIZER_MARKERS if m in text]


def server_command(*args):
    """The argv that starts tradewinkd: TW_TEST_WRAPPER's words (if any), the binary, args."""
    return [*WRAPPER, binary_path(), *args]


# Memcheck error kinds that fail a test. Leaks count only when definite (the wrapper passes
# --errors-for-leak-kinds=definite, so the ERROR SUMMARY agrees); suppressed third-party
# noise never shows up in the log at all.
VALGRIND_ERROR_MARKERS = (
    "Invalid read",
    "Invalid write",
    "Invalid free",
    "Mismatched free",
    "uninitialised",
    "Source and destination overlap",
    "Syscall param",
)
_VG_LINE = re.compile(r"^==(\d+)== ?(.*)$")
_VG_DEFINITE = re.compile(r"definitely lost: ([\d,]+) bytes")
_VG_SUMMARY = re.compile(r"ERROR SUMMARY: ([\d,]+) errors")


def _wrapper_log_pattern():
    """The --log-file value in the wrapper (valgrind's %p = PID), or None."""
    for i, a in enumerate(WRAPPER):
        if a.startswith("--log-file="):
            return a.split("=", 1)[1]
        if a == "--log-file" and i + 1 < len(WRAPPER):
            return WRAPPER[i + 1]
    return None


def valgrind_text(pid, stderr_text=""):
    """Everything valgrind wrote about process pid: its log file plus ==pid== stderr lines."""
    parts = []
    pattern = _wrapper_log_pattern()
    if pattern:
        path = pattern.replace("%p", str(pid))
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                parts.append(f.read())
    parts.extend(ln for ln in stderr_text.splitlines() if ln.startswith("==%d==" % pid))
    return "\n".join(parts)


def valgrind_findings(text):
    """The memcheck problems in a valgrind log, as short strings; [] when clean."""
    found = []
    body = "\n".join(m.group(2) for m in map(_VG_LINE.match, text.splitlines()) if m)
    for marker in VALGRIND_ERROR_MARKERS:
        if marker in body:
            found.append(marker)
    for m in _VG_DEFINITE.finditer(body):
        if int(m.group(1).replace(",", "")) > 0:
            found.append("definitely lost: %s bytes" % m.group(1))
    for m in _VG_SUMMARY.finditer(body):
        if int(m.group(1).replace(",", "")) > 0:
            found.append("ERROR SUMMARY: %s errors" % m.group(1))
    return found


def check_valgrind(pid, stderr_text="", returncode=None):
    """Raise AssertionError with the log excerpt when the wrapper reported a memcheck error
    for process pid, or when its report is missing (a check that read nothing must not pass).
    A no-op without a wrapper."""
    if not WRAPPER:
        return
    text = valgrind_text(pid, stderr_text)
    where = (_wrapper_log_pattern() or "stderr").replace("%p", str(pid))
    # SIGKILL is the one exit valgrind cannot see, so only then may the summary be absent.
    if "ERROR SUMMARY" not in text and returncode != -signal.SIGKILL:
        raise AssertionError("no valgrind report for pid %d in %s (exit %r)"
                             % (pid, where, returncode))
    found = valgrind_findings(text)
    if found:
        raise AssertionError("valgrind found %s in pid %d (%s):\n%s"
                             % (", ".join(found), pid, where, text[-12000:]))


def run_once(env_extra=None, args=(), timeout=30.0):
    """Run tradewinkd to completion (config errors, --help). Returns (rc, stdout, stderr).
    Under a wrapper, raises AssertionError if the run had a memcheck error."""
    tmp = tempfile.mkdtemp(prefix="twinteg-")
    try:
        p = subprocess.Popen(
            server_command(*args),
            cwd=tmp,
            env=base_env(env_extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = p.communicate(timeout=timeout * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
        check_valgrind(p.pid, err, p.returncode)
        return p.returncode, out, err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def backend_url():
    """The PostgreSQL URL when this run targets PostgreSQL (TW_TEST_USE_PG=1), else None."""
    if os.environ.get("TW_TEST_USE_PG") != "1":
        return None
    url = os.environ.get("TW_TEST_PG_URL")
    if not url:
        raise RuntimeError("TW_TEST_USE_PG=1 needs TW_TEST_PG_URL (scripts/test.sh sets it)")
    return url


def pg_schema_for(workdir):
    """A PostgreSQL schema private to one workdir (created once, reused across restarts)."""
    import uuid
    marker = os.path.join(workdir, ".pgschema")
    if os.path.exists(marker):
        with open(marker) as f:
            return f.read().strip()
    schema = "t_" + uuid.uuid4().hex[:16]
    subprocess.check_call(["psql", "-q", "-v", "ON_ERROR_STOP=1", backend_url(), "-c",
                           "CREATE SCHEMA %s" % schema], stdout=subprocess.DEVNULL)
    with open(marker, "w") as f:
        f.write(schema)
    return schema


def pg_url_for(workdir):
    url = backend_url()
    sep = "&" if "?" in url else "?"
    return url + sep + "options=-csearch_path%3D" + pg_schema_for(workdir)


def db_sql(workdir, sql):
    """Run SQL as the database owner against this workdir's database (either backend)."""
    if backend_url():
        schema = pg_schema_for(workdir)
        subprocess.check_call(["psql", "-q", "-v", "ON_ERROR_STOP=1", backend_url(), "-c",
                               "SET search_path TO %s; %s" % (schema, sql)],
                              stdout=subprocess.DEVNULL)
    else:
        import sqlite3
        db = sqlite3.connect(os.path.join(workdir, "tradewink.db"))
        db.executescript(sql)
        db.commit()
        db.close()


def db_dump(workdir):
    """Every byte of this workdir's database: the SQLite files, or pg_dump of its schema."""
    if backend_url():
        return subprocess.check_output(["pg_dump", "-n", pg_schema_for(workdir), backend_url()])
    out = b""
    for name in sorted(os.listdir(workdir)):
        if name.startswith("tradewink.db"):
            with open(os.path.join(workdir, name), "rb") as f:
                out += f.read()
    return out


class TwServer:
    """One tradewinkd process. Use as a context manager or call start()/stop()."""

    def __init__(self, env=None, workdir=None):
        self.env_extra = dict(env or {})
        self.workdir = workdir
        self._own_workdir = workdir is None
        self.proc = None
        self.port = None
        self.listening = None
        self._lines = []
        self._cond = threading.Condition()
        self._reader = None
        self.returncode = None
        self._wrapper_checked = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout=START_TIMEOUT_S):
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="twinteg-")
        if backend_url() and "TW_DATABASE_URL" not in self.env_extra:
            self.env_extra["TW_DATABASE_URL"] = pg_url_for(self.workdir)
        timeout *= TIMEOUT_SCALE
        self.proc = subprocess.Popen(
            server_command(),
            cwd=self.workdir,
            env=base_env(self.env_extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        ev = self.wait_for_event("listening", timeout=timeout)
        if ev is None:
            out = self.stderr_text()
            self.kill()
            raise RuntimeError("tradewinkd did not report listening; stderr:\n" + out)
        self.listening = ev
        self.port = int(ev["port"])
        # Health turns SERVING only after the first store probe, which runs just after the
        # listening line; wait for it (bounded) so tests do not race the first probe.
        self.wait_for(lambda lines: any('"event":"health"' in ln and "SERVING" in ln
                                        and "NOT_SERVING" not in ln for ln in lines),
                      timeout=READY_TIMEOUT_S)  # wait_for applies TIMEOUT_SCALE
        return self

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal by PID, wait, and return the exit code (does not assert on it; under a
        wrapper, a memcheck error in the process raises AssertionError)."""
        if self.proc is None:
            return self.returncode
        timeout *= TIMEOUT_SCALE
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                "tradewinkd did not exit within %.1fs of signal %d" % (timeout, sig)
            )
        if self._reader:
            self._reader.join(timeout=5)
        self.check_wrapper()
        return self.returncode

    def check_wrapper(self):
        """Raise AssertionError if the wrapper (valgrind) logged an error for this process.
        A no-op without a wrapper; each process is checked once."""
        if not WRAPPER or self.proc is None or self._wrapper_checked:
            return
        self._wrapper_checked = True
        check_valgrind(self.proc.pid, self.stderr_text(), self.proc.returncode)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            self.returncode = self.proc.returncode

    def cleanup(self):
        self.kill()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_and_check(self, testcase, sig=signal.SIGTERM, timeout=15.0):
        """Stop with SIGTERM and assert exit 0, a sanitizer-clean stderr and, under a wrapper,
        a memcheck-clean valgrind log."""
        rc = self.stop(sig=sig, timeout=timeout)  # raises on a valgrind finding (wrapper)
        text = self.stderr_text()
        testcase.assertEqual(rc, 0, "tradewinkd exit code %r; stderr tail:\n%s" % (rc, text[-4000:]))
        testcase.assertEqual(sanitizer_reports(text), [], "sanitizer report:\n" + text[-8000:])
        drift = [ln for ln in self.lines() if '"event":"ledger_drift"' in ln]
        if drift:  # the whole log: which calls led there
            print("\n".join(self.lines()))
        testcase.assertEqual(drift, [], "a cached book drifted from the database")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    # -- logs --------------------------------------------------------------------------------
    def lines(self):
        with self._cond:
            return list(self._lines)

    def stderr_text(self):
        return "\n".join(self.lines())

    def events(self, name=None):
        out = []
        for line in self.lines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and (name is None or obj.get("event") == name):
                out.append(obj)
        return out

    def wait_for(self, predicate, timeout=10.0):
        """Wait until predicate(lines) is truthy; returns its value or None on timeout."""
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        with self._cond:
            while True:
                v = predicate(list(self._lines))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if self.proc.poll() is not None and not self._reader.is_alive():
                    return predicate(list(self._lines)) or None
                self._cond.wait(min(left, 0.2))

    def wait_for_event(self, name, timeout=10.0):
        def pred(lines):
            for line in lines:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("event") == name:
                    return obj
            return None

        return self.wait_for(pred, timeout)

    def access_lines(self, method=None):
        return [
            e for e in self.events("access") if method is None or e.get("method") == method
        ]

    def wait_access_count(self, method, count, timeout=10.0):
        """Wait until at least `count` access lines exist for method; return them."""

        def pred(_lines):
            got = self.access_lines(method)
            return got if len(got) >= count else None

        return self.wait_for(pred, timeout) or self.access_lines(method)


# -- generated standard protos -----------------------------------------------------------------
_GEN = {}
_GEN_LOCK = threading.Lock()


def _load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def grpc_protos():
    """Return a dict with generated modules: health, refl_v1, refl_v1alpha.

    Generated with `protoc --python_out` from /usr/share/grpc-proto at test time and loaded by
    file path (a package named `grpc` would clash with grpcio itself)."""
    with _GEN_LOCK:
        if _GEN:
            return _GEN
        protoc = shutil.which("protoc") or "/usr/bin/protoc"
        out = tempfile.mkdtemp(prefix="twproto-")
        files = {
            "health": "grpc/health/v1/health.proto",
            "refl_v1": "grpc/reflection/v1/reflection.proto",
            "refl_v1alpha": "grpc/reflection/v1alpha/reflection.proto",
        }
        for rel in files.values():
            if not os.path.exists(os.path.join(GRPC_PROTO_DIR, rel)):
                raise RuntimeError("missing %s/%s (install grpc-proto)" % (GRPC_PROTO_DIR, rel))
        subprocess.run(
            [protoc, "-I", GRPC_PROTO_DIR, "--python_out=" + out, *files.values()],
            check=True,
            timeout=60,
        )
        for key, rel in files.items():
            path = os.path.join(out, rel[: -len(".proto")] + "_pb2.py")
            _GEN[key] = _load_module("twgen_" + key, path)
        shutil.rmtree(out, ignore_errors=True)
        return _GEN


def health_stubs(channel):
    """(check, watch) multicallables for grpc.health.v1.Health on channel."""
    h = grpc_protos()["health"]
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=h.HealthCheckRequest.SerializeToString,
        response_deserializer=h.HealthCheckResponse.FromString,
    )
    watch = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=h.HealthCheckRequest.SerializeToString,
        response_deserializer=h.HealthCheckResponse.FromString,
    )
    return check, watch


def raw_unary(channel, path):
    """A unary multicallable that sends and receives raw bytes."""
    return channel.unary_unary(path)


def tradewink_rpcs(include_sim=True):
    """Every 'Service/Method' declared in proto/tradewink/v1/*.proto, parsed from the text."""
    import re

    d = os.path.join(SOURCE_DIR, "proto", "tradewink", "v1")
    out = set()
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".proto"):
            continue
        if fn == "sim.proto" and not include_sim:
            continue
        with open(os.path.join(d, fn), encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r"//[^\n]*", "", text)
        pkg = re.search(r"^\s*package\s+([\w.]+)\s*;", text, re.M).group(1)
        for svc in re.finditer(r"service\s+(\w+)\s*\{", text):
            depth, i = 1, svc.end()
            while depth and i < len(text):
                depth += {"{": 1, "}": -1}.get(text[i], 0)
                i += 1
            body = text[svc.end() : i]
            for m in re.finditer(r"\brpc\s+(\w+)\s*\(", body):
                out.add("%s.%s/%s" % (pkg, svc.group(1), m.group(1)))
    return out


def openssl(*args, cwd=None):
    subprocess.run(
        ["openssl", *args],
        cwd=cwd,
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def make_pki(d):
    """CA, server cert (SAN IP:127.0.0.1, DNS:localhost), client cert signed by the CA, and a
    second unrelated CA with a client cert. Returns a dict of file paths."""
    p = {k: os.path.join(d, k) for k in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "client.key",
        "client.csr", "client.pem", "other_ca.key", "other_ca.pem", "other_client.key",
        "other_client.csr", "other_client.pem", "server.ext", "client.ext")}
    with open(p["server.ext"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    with open(p["client.ext"], "w") as f:
        f.write("extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n")
    for ca, key in (("ca.pem", "ca.key"), ("other_ca.pem", "other_ca.key")):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", p[key], "-out", p[ca], "-days", "2",
                "-subj", "/CN=tradewink test " + ca)
    def leaf(name, ca, cakey, ext, cn):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", p[name + ".key"], "-out", p[name + ".csr"], "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", p[name + ".csr"], "-CA", p[ca], "-CAkey", p[cakey],
                "-CAcreateserial", "-out", p[name + ".pem"], "-days", "2", "-extfile", p[ext])
    leaf("server", "ca.pem", "ca.key", "server.ext", "localhost")
    leaf("client", "ca.pem", "ca.key", "client.ext", "tradewink-client")
    leaf("other_client", "other_ca.pem", "other_ca.key", "client.ext", "intruder")
    return p


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    """unittest.main with a verbosity that shows each case name in the CTest log."""
    import unittest

    unittest.main(verbosity=2)
