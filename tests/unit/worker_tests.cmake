rlb_unit_test(resume_tracker_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/resume_tracker_test.cc
              LIBS rlb_worker)
rlb_unit_test(worker_outbox_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/worker_outbox_test.cc
              LIBS rlb_worker)
rlb_unit_test(worker_disconnect_test
              SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/worker_disconnect_test.cc LIBS rlb_worker)

# The zkworker's lock annotations (common/thread_annotations.h) are checked by clang's
# -Wthread-safety: the annotated sources must compile clean, and a deliberate violation
# must be rejected (so the check cannot pass by the macros expanding to nothing).
find_program(RLB_CLANGXX NAMES clang++)
add_test(NAME worker_thread_safety_annotations
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/check_thread_safety.sh "${RLB_CLANGXX}"
                 ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/thread_safety_violation.cc
                 ${PROJECT_SOURCE_DIR}/zkworker/response_outbox.cc
                 ${PROJECT_SOURCE_DIR}/zkworker/worker_server.cc)
set_tests_properties(worker_thread_safety_annotations PROPERTIES SKIP_RETURN_CODE 77)
rlb_unit_test(worker_zk_registration_test
              SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/zk_registration_test.cc LIBS rlb_worker)
rlb_unit_test(supervisor_policy_test
              SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/supervisor_policy_test.cc LIBS rlb_worker)
rlb_unit_test(worker_metrics_test
              SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/worker_metrics_test.cc LIBS rlb_worker)
