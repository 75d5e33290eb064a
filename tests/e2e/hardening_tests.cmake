# Hardening end-to-end modules (HTTP abuse suite, fault injection), added to the ctest list
# by tests/e2e/CMakeLists.txt. test_faults mounts a tmpfs for its disk-full case (root
# only; skipped otherwise). The soak test is a command, not a ctest entry:
#   /usr/bin/python3 tests/soak/soak.py --minutes 30 --out DIR   (--minutes 0.5: short mode)
# test_soak_short runs the short mode (~32 s) with every verdict; under ASan RSS is reported
# but not judged (the quarantine inflates it) and leaks are left to LeakSanitizer's exit code.
set(RLB_HARDENING_E2E_MODULES
  test_abuse_http
  test_faults
  test_soak_short
)
