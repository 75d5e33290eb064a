# Shared helpers in common/ (the frame codec has codec_test of its own).
rlb_unit_test(common_test
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/text_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/wall_clock_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/temp_file_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/net_address_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/json_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/loop_lifetime_test.cc
          ${CMAKE_CURRENT_SOURCE_DIR}/loop_handles_test.cc
  LIBS rlb_common)
