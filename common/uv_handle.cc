// CloseLoop: the end of every main.
#include "common/uv_handle.h"

namespace rlb {

void CloseLoop(uv_loop_t* loop) {
  uv_run(loop, UV_RUN_DEFAULT);  // close callbacks still due
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        LOG(ERROR) << "handle left open at exit: " << uv_handle_type_name(uv_handle_get_type(h))
                   << (uv_is_active(h) ? " (active)" : "") << (uv_is_closing(h) ? " (closing)" : "");
      },
      nullptr);
  int rc = uv_loop_close(loop);
  CHECK_EQ(rc, 0) << "uv_loop_close: " << uv_strerror(rc);
}

}  // namespace rlb
