# ZooKeeper end-to-end test modules (zkresumelb and zkworker in ZooKeeper mode), for
# tests/e2e/CMakeLists.txt to add to its list, e.g. include(zk_tests.cmake) then
# list(APPEND RLB_E2E_MODULES ${RLB_ZK_E2E_MODULES}) before its foreach. Each runs as
# `/usr/bin/python3 -m unittest -v MODULE` in this directory and starts its own throwaway
# ZooKeeper server(s) (Debian's zookeeper package and a JRE; skipped without them).
set(RLB_ZK_E2E_MODULES
  test_zk_registration
  test_zk_settings
  test_zk_single_version
  test_zk_faults
  test_zk_supervisor
  test_zk_agreement
  test_zk_ensemble
  test_zk_auth
  test_netns_hosts
  test_zk_scale
  test_zk_link_auth
)
