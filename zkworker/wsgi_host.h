// WsgiHost: the embedded CPython 3.11 interpreter and the WSGI application it runs.
//
// Start-up (main thread, in this order): Init() -> [ReadServerSection()] -> LoadApp*() ->
// ReleaseMainThread(). Then any number of application threads may call Call() at once;
// each holds the GIL for the whole request (building the environ, the application, the
// response's non-blocking hand-over to its ResponseSink) and releases it only where it
// may wait: while a response chunk waits for the load balancer's connection
// (ResponseSink::BodyWait) and wherever the application itself releases it. Finalize() runs on the
// main thread after every application thread has stopped.
//
// The PEP 3333 logic itself (start_response, write(), exc_info, close()) is in
// zkworker/wsgi_glue.py, compiled into the binary.
#ifndef RESUMELB_ZKWORKER_WSGI_HOST_H_
#define RESUMELB_ZKWORKER_WSGI_HOST_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/frame_codec.h"
#include "common/status.h"

namespace rlb::worker {

class TraceLog;

// Where one request's response goes. Called on the application thread.
//
// Start(), Body() and End() never block, so the glue calls them with the GIL held (no GIL
// hand-off for a hello-world response). The head and small body chunks are held by the
// sink and leave together — usually in one write, the response's RESPONSE, RESPONSE_BODY
// and RESPONSE_END frames at once — when the response ends, when a chunk is to be sent
// now (`more` false: the application streams) or when a chunk's worth is held. Only
// BodyWait() waits for a backed-up connection; call it without the GIL.
class ResponseSink {
 public:
  enum class Sent {
    kOk,         // queued (or held, to leave with what follows)
    kCancelled,  // the request was cancelled: stop producing output
    kMustWait,   // the connection is backed up (or `data` is large): nothing more was
                 // done with `data`; call BodyWait() (data or {}, as it says) without the GIL
  };
  virtual ~ResponseSink() = default;
  // Holds the status and headers until the first body bytes or End(). False: cancelled (or
  // a head over the protocol's limits, which is never sent).
  virtual bool Start(std::string_view status, proto::Pairs headers) = 0;
  // Appends body bytes; `more`: the caller has more ready at once (an in-memory list), so
  // they may be held. kMustWait with data larger than a chunk: nothing was taken, pass
  // `data` to BodyWait(); with smaller data: it was taken, call BodyWait({}).
  virtual Sent Body(std::string_view data, bool more) = 0;
  // Sends what is held, then `data`, waiting while the connection is backed up. False once
  // the request is cancelled.
  virtual bool BodyWait(std::string_view data) = 0;
  // Sends what is held and RESPONSE_END. Never blocks.
  virtual void End(bool complete) = 0;
};

// One request as the application thread sees it.
struct WsgiCall {
  std::string request_class;
  const proto::Pairs* environ = nullptr;  // as the LB sent it
  std::string lb_ip;                      // the LB connection's peer, for zc.resumelb.lb_addr
  int lb_port = 0;
  std::string memory_body;  // the body, when it was small enough to keep in memory
  int body_fd = -1;         // or an unlinked temp file holding it (ownership passes to Call)
  size_t body_size = 0;
  int conn_id = 0;          // the trace id is "<connection id>.<rno>" (TraceId())
  uint32_t rno = 0;
  ResponseSink* sink = nullptr;
  std::string TraceId() const;
};
struct WsgiHostOptions {
  std::string virtualenv;                // a venv made from Debian's /usr/bin/python3
  std::vector<std::string> pythonpath;   // prepended to sys.path
  int threads = 1;                       // for wsgi.multithread
  std::string tracelog_key = "tracelog";
  TraceLog* tracelog = nullptr;          // not owned; null: no tracing
};

class WsgiHost {
 public:
  explicit WsgiHost(WsgiHostOptions options);
  ~WsgiHost();
  WsgiHost(const WsgiHost&) = delete;
  WsgiHost& operator=(const WsgiHost&) = delete;

  Status Init();
  // The [server:NAME] options of a Paste Deploy file (interpolated, as strings).
  StatusOr<std::map<std::string, std::string>> ReadServerSection(const std::string& ini_path);
  // "module:callable" (gunicorn's convention; the callable part may be an expression).
  Status LoadAppSpec(const std::string& spec);
  // [app:main] (or a pipeline/composite) of a Paste Deploy file, through PasteDeploy.
  Status LoadPasteApp(const std::string& ini_path);
  // Puts `dirs` first on sys.path, in order (e.g. [server:main] pythonpath, known only
  // after Init()). Main thread, before ReleaseMainThread().
  void PrependPythonPath(const std::vector<std::string>& dirs);
  // Settings known only after the config file was read (before the first Call()).
  void set_threads(int threads) { options_.threads = threads; }
  // zkworker --check: a failed LoadAppSpec() or LoadPasteApp() also prints the Python
  // traceback on stderr (otherwise the error is only the returned one-line Status).
  void set_print_load_traceback(bool on) { print_load_traceback_ = on; }
  void set_tracelog(TraceLog* tracelog, std::string key) {
    options_.tracelog = tracelog;
    options_.tracelog_key = std::move(key);
  }
  // Gives up the GIL held since Init(); application threads may call Call() afterwards.
  void ReleaseMainThread();

  // Forking a process that runs Python (zkworker --processes --preload): the main thread
  // holds the GIL (before ReleaseMainThread()) and no other thread runs Python. Call
  // BeforeFork() before fork(), then AfterForkChild() in the child or AfterForkParent()
  // in the parent.
  void BeforeFork();
  void AfterForkChild();
  void AfterForkParent();
  // Threads of the interpreter (threading.active_count()); main thread, GIL held.
  int PythonThreadCount();

  // Runs the application for one request. Returns true if the response completed.
  bool Call(WsgiCall& call);

  // Re-acquires the GIL on the main thread and finalizes the interpreter.
  void Finalize();

  // Whether trace records are written: callers build a record's text only then.
  bool tracing() const { return options_.tracelog != nullptr; }
  // Records a trace line if tracing is on (any thread).
  void Trace(std::string_view code, std::string_view id, std::string_view msg);

 private:
  // The environ key `name` as a Python str (a new reference): keys repeat on every request,
  // so they are made once and shared (immutable). GIL held.
  void* Key(std::string_view name);

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  WsgiHostOptions options_;
  bool initialized_ = false;
  // Key()'s strings (PyObject*), guarded by the GIL; bounded, so that clients sending ever
  // new header names cannot grow it.
  std::unordered_map<std::string, void*, StringHash, std::equal_to<>> keys_;
  void* http_ = nullptr;         // PyObject*: "http"
  std::string lb_addr_ip_;       // the last zc.resumelb.lb_addr built, shared while the
  int lb_addr_port_ = 0;         // load balancer is the same (guarded by the GIL)
  void* lb_addr_ = nullptr;      // PyObject*: (ip, port)
  bool print_load_traceback_ = false;
  void* main_state_ = nullptr;  // PyThreadState* saved by ReleaseMainThread
  void* glue_ = nullptr;        // PyObject*: the wsgi_glue module
  void* run_ = nullptr;         // PyObject*: glue.run
  void* app_ = nullptr;         // PyObject*: the application
  void* bytes_io_ = nullptr;    // PyObject*: io.BytesIO
  void* file_input_ = nullptr;  // PyObject*: glue.file_input
  void* error_stream_ = nullptr;// PyObject*: glue.ErrorStream
  void* file_wrapper_ = nullptr;// PyObject*: glue.FileWrapper
  void* trace_cls_ = nullptr;   // PyObject*: glue.TraceLog
  void* wsgi_version_ = nullptr;// PyObject*: (1, 0)
};

}  // namespace rlb::worker

#endif  // RESUMELB_ZKWORKER_WSGI_HOST_H_
