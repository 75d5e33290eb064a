# status/: the status document, the status server and the tools' client socket.
rlb_unit_test(status_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/status_test.cc
              LIBS rlb_status rlb_tool_client)
