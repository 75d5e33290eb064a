// UvHandle<H>: the one way this project owns a libuv handle.
//
// libuv's rule is that a handle's memory must stay valid until its close callback has run,
// which is always later than the uv_close() call. Owners therefore never embed handles:
// a UvHandle allocates the handle on the heap, and Close() (or the destructor) hands it to
// libuv, whose close callback frees it. An owner may thus be destroyed right after closing
// its handles, without waiting for close callbacks and without counting them.
//
// After Close() libuv delivers no more read, timer, connection or signal callbacks for the
// handle. Requests still pending on it (writes, connects) complete with UV_ECANCELED; their
// callbacks must not touch the owner in that case (StreamWriter orphans its requests).
//
// Thread rules: loop thread only (the loop the handle was initialised on).
#ifndef RESUMELB_COMMON_UV_HANDLE_H_
#define RESUMELB_COMMON_UV_HANDLE_H_

#include <uv.h>

#include <type_traits>

#include <glog/logging.h>

namespace rlb {

template <typename H>
class UvHandle {
 public:
  UvHandle() = default;
  ~UvHandle() { Close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  // Allocates and initialises the handle on `loop`; `owner` becomes handle->data, the
  // pointer callbacks use to find their object. Returns 0 or a libuv error (nothing is
  // left open on error). REQUIRES: !open().
  int Init(uv_loop_t* loop, void* owner) {
    static_assert(!std::is_same_v<H, uv_async_t>, "an async handle needs its callback");
    return Adopt(owner, [loop](H* h) { return InitHandle(loop, h); });
  }
  // uv_async_t only: `cb` runs on the loop after uv_async_send(get()), which is the one call
  // other threads may make (while the handle is open; the owner guarantees that).
  int Init(uv_loop_t* loop, void* owner, uv_async_cb cb) {
    static_assert(std::is_same_v<H, uv_async_t>, "only async handles take a callback here");
    return Adopt(owner, [loop, cb](H* h) { return uv_async_init(loop, h, cb); });
  }

  bool open() const { return h_ != nullptr; }
  H* get() const { return h_; }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }
  uv_stream_t* stream() const {
    static_assert(std::is_same_v<H, uv_tcp_t> || std::is_same_v<H, uv_pipe_t>,
                  "only streams have stream()");
    return reinterpret_cast<uv_stream_t*>(h_);
  }
  uv_loop_t* loop() const { return h_->loop; }

  // Closes the handle (no-op when not open); its memory is freed by the close callback.
  void Close() {
    if (h_ == nullptr) return;
    H* h = h_;
    h_ = nullptr;
    h->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(h), &FreeHandle);
  }

  // TCP only: closes with a RST instead of a FIN (the peer sees ECONNRESET), falling back
  // to an ordinary close when the socket cannot be reset (e.g. a write is pending).
  void CloseReset() {
    static_assert(std::is_same_v<H, uv_tcp_t>, "only TCP connections can be reset");
    if (h_ == nullptr) return;
    H* h = h_;
    h_ = nullptr;
    h->data = nullptr;
    if (uv_tcp_close_reset(h, &FreeHandle) != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(h), &FreeHandle);
    }
  }

 private:
  static void FreeHandle(uv_handle_t* h) { delete reinterpret_cast<H*>(h); }

  template <typename InitFn>
  int Adopt(void* owner, InitFn init) {
    CHECK(h_ == nullptr) << "UvHandle initialised twice";
    H* h = new H;
    int rc = init(h);
    if (rc != 0) {
      delete h;
      return rc;
    }
    h->data = owner;
    h_ = h;
    return 0;
  }

  static int InitHandle(uv_loop_t* loop, H* h) {
    if constexpr (std::is_same_v<H, uv_tcp_t>) {
      return uv_tcp_init(loop, h);
    } else if constexpr (std::is_same_v<H, uv_pipe_t>) {
      return uv_pipe_init(loop, h, 0);
    } else if constexpr (std::is_same_v<H, uv_timer_t>) {
      return uv_timer_init(loop, h);
    } else if constexpr (std::is_same_v<H, uv_signal_t>) {
      return uv_signal_init(loop, h);
    } else if constexpr (std::is_same_v<H, uv_check_t>) {
      return uv_check_init(loop, h);
    } else if constexpr (std::is_same_v<H, uv_idle_t>) {
      return uv_idle_init(loop, h);
    } else if constexpr (std::is_same_v<H, uv_prepare_t>) {
      return uv_prepare_init(loop, h);
    } else {
      static_assert(!sizeof(H), "UvHandle: unsupported handle type");
    }
  }

  H* h_ = nullptr;
};

// Ends a loop whose owners have closed everything: runs it until the close callbacks are
// done, logs any handle still open (a leak: its type and whether it is active), and CHECKs
// that uv_loop_close() returns 0. Every main ends with this.
void CloseLoop(uv_loop_t* loop);

}  // namespace rlb

#endif  // RESUMELB_COMMON_UV_HANDLE_H_
