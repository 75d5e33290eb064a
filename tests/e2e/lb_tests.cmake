# resumelb (load balancer) end-to-end test modules, for tests/e2e/CMakeLists.txt to add to
# its list, e.g. include(lb_tests.cmake) then list(APPEND RLB_E2E_MODULES ${RLB_LB_E2E_MODULES})
# before its foreach. Each runs as `/usr/bin/python3 -m unittest -v MODULE` in this directory.
set(RLB_LB_E2E_MODULES
  test_lb_routing
  test_lb_http
  test_lb_failures
  test_lb_bad_input
  test_lb_status_ops
  test_lb_containment
  test_lb_resolve
  test_lb_hostile
  test_lb_http_edges
  test_lb_conformance
  test_lb_signals
  test_lb_admin
  test_lb_nagios
  test_lb_class_memory
  test_lb_processes
  test_instant_worker
)
