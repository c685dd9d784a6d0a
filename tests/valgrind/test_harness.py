"""Self-test of the valgrind check in tests/integration/twserver.py.

Purpose: the valgrind suite is only worth something if its log check fails on real errors.
Three parts: (1) valgrind_findings() over hand-written memcheck log excerpts, table driven,
clean logs included; (2) vg_faulty (tests/valgrind/vg_faulty.c) run under the very
TW_TEST_WRAPPER the suite uses, once per deliberate error kind plus a clean run, checking
that check_valgrind() raises for each error and stays quiet for the clean one; (3) a process
with no valgrind report fails the check, so a broken log path cannot pass silently.

Invariants: part (2) needs TW_TEST_WRAPPER and TW_VG_FAULTY (both set by CMake); it is
skipped, not passed, without them.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import twserver  # noqa: E402

CLEAN_TAIL = """==7== HEAP SUMMARY:
==7==     in use at exit: 9,685 bytes in 123 blocks
==7== LEAK SUMMARY:
==7==    definitely lost: 0 bytes in 0 blocks
==7==    indirectly lost: 0 bytes in 0 blocks
==7==      possibly lost: 1,024 bytes in 2 blocks
==7==    still reachable: 9,685 bytes in 123 blocks
==7==         suppressed: 0 bytes in 0 blocks
==7== ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 12 from 3)
"""

LOG_CASES = [
    # (case name, log text, findings that must be reported)
    ("clean_log_with_possibly_lost_and_reachable_is_clean", CLEAN_TAIL, []),
    ("valgrind_tool_warnings_are_not_errors",
     "--7-- WARNING: unhandled amd64-linux syscall: 325\n" + CLEAN_TAIL, []),
    ("invalid_read_is_reported",
     "==7== Invalid read of size 1\n==7==    at 0x1: f (a.c:3)\n"
     + CLEAN_TAIL.replace("ERROR SUMMARY: 0", "ERROR SUMMARY: 1"),
     ["Invalid read", "ERROR SUMMARY: 1 errors"]),
    ("invalid_write_is_reported",
     "==7== Invalid write of size 8\n" + CLEAN_TAIL, ["Invalid write"]),
    ("uninitialised_jump_is_reported",
     "==7== Conditional jump or move depends on uninitialised value(s)\n" + CLEAN_TAIL,
     ["uninitialised"]),
    ("invalid_free_is_reported", "==7== Invalid free() / delete / delete[] / realloc()\n"
     + CLEAN_TAIL, ["Invalid free"]),
    ("definite_leak_with_thousands_separator_is_reported",
     CLEAN_TAIL.replace("definitely lost: 0 bytes in 0", "definitely lost: 1,234 bytes in 5"),
     ["definitely lost: 1,234 bytes"]),
    ("nonzero_error_summary_alone_is_reported",
     CLEAN_TAIL.replace("ERROR SUMMARY: 0", "ERROR SUMMARY: 2"), ["ERROR SUMMARY: 2 errors"]),
    ("server_text_without_valgrind_prefix_is_ignored",
     '{"msg":"Invalid read of size 4 definitely lost: 9 bytes"}\n' + CLEAN_TAIL, []),
]


class LogParsing(unittest.TestCase):
    def test_log_cases(self):
        for name, text, want in LOG_CASES:
            with self.subTest(name):
                self.assertEqual(twserver.valgrind_findings(text), want)


FAULTY_CASES = [
    # (mode, a finding that must appear; None = must be clean)
    ("clean", None),
    ("invalid-read", "Invalid read"),
    ("invalid-write", "Invalid write"),
    ("uninit", "uninitialised"),
    ("leak", "definitely lost: 64 bytes"),
]


@unittest.skipUnless(twserver.WRAPPER and os.environ.get("TW_VG_FAULTY"),
                     "needs TW_TEST_WRAPPER and TW_VG_FAULTY")
class LiveWrapper(unittest.TestCase):
    def run_faulty(self, mode):
        p = subprocess.Popen([*twserver.WRAPPER, os.environ["TW_VG_FAULTY"], mode],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        _, err = p.communicate(timeout=120)
        return p.pid, p.returncode, err

    def test_each_error_kind_fails_the_check_and_clean_passes(self):
        for mode, want in FAULTY_CASES:
            with self.subTest(mode):
                pid, rc, err = self.run_faulty(mode)
                text = twserver.valgrind_text(pid, err)
                self.assertIn("ERROR SUMMARY", text, "no valgrind log for pid %d" % pid)
                if want is None:
                    self.assertEqual(rc, 0)
                    twserver.check_valgrind(pid, err)
                else:
                    self.assertNotEqual(rc, 0, "--error-exitcode should mark the run")
                    with self.assertRaises(AssertionError) as cm:
                        twserver.check_valgrind(pid, err)
                    self.assertIn(want, str(cm.exception))
                    self.assertIn("vg_faulty.c", str(cm.exception), "excerpt has the stack")

    def test_missing_report_fails_unless_the_process_was_sigkilled(self):
        pid = 4194304 + 7  # above pid_max's default: no log of that name can exist
        with self.assertRaises(AssertionError) as cm:
            twserver.check_valgrind(pid, "", 0)
        self.assertIn("no valgrind report", str(cm.exception))
        twserver.check_valgrind(pid, "", -9)  # SIGKILL: valgrind could not write a summary


if __name__ == "__main__":
    unittest.main(verbosity=2)
