rlb_unit_test(resume_tracker_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/resume_tracker_test.cc
              LIBS rlb_worker)
