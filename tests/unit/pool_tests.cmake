rlb_unit_test(pool_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/resume_pool_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/classless_pool_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/class_bounds_test.cc
  LIBS rlb_pool)
rlb_unit_test(http_classifier_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/http_classifier_test.cc
              LIBS rlb_lb)
rlb_unit_test(exchange_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/exchange_test.cc LIBS rlb_lb)
rlb_unit_test(fd_budget_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fd_budget_test.cc LIBS rlb_lb)
rlb_unit_test(balanced_pool_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/balanced_pool_test.cc
              LIBS rlb_pool)
rlb_unit_test(pool_sim_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/pool_sim_test.cc
              LIBS rlb_pool_sim)
rlb_unit_test(pool_options_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/pool_options_test.cc
              LIBS rlb_lb)
