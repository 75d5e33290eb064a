# Frame codec tests: common/frame_codec against tests/vectors/protocol_vectors.json.
rlb_unit_test(codec_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/codec_test.cc LIBS rlb_common)
target_compile_definitions(codec_test PRIVATE
  RLB_VECTORS_FILE="${PROJECT_SOURCE_DIR}/tests/vectors/protocol_vectors.json"
  RLB_PROJECT_VERSION="${PROJECT_VERSION}")
# Link authentication: the PROOF against the vectors' link_proofs, the handshake, the secret file.
rlb_unit_test(link_auth_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/link_auth_test.cc LIBS rlb_common)
target_compile_definitions(link_auth_test PRIVATE
  RLB_VECTORS_FILE="${PROJECT_SOURCE_DIR}/tests/vectors/protocol_vectors.json")
