# Pool algorithms (résumé-based classic and balanced, classless), independent of networking.
add_library(rlb_pool STATIC
  ${CMAKE_CURRENT_LIST_DIR}/class_name.cc
  ${CMAKE_CURRENT_LIST_DIR}/pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/placement_ring.cc
  ${CMAKE_CURRENT_LIST_DIR}/resume_pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/classless_pool.cc
  ${CMAKE_CURRENT_LIST_DIR}/balanced_pool.cc
)
target_include_directories(rlb_pool PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(rlb_pool PUBLIC rlb_common glog::glog)
