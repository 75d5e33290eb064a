// WsgiHost: CPython embedding (PyConfig, GIL hand-over), the _resumelb builtin module that
// the glue calls back into, and environ construction.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "zkworker/wsgi_host.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <glog/logging.h>

#include "common/wall_clock.h"
#include "zkworker/trace_log.h"
#include "zkworker/wsgi_glue_py.h"  // generated from wsgi_glue.py: kWsgiGlueSource

namespace rlb::worker {
namespace {

// What a capsule handed to the glue points at: the call and its host, valid during run().
struct CallContext {
  WsgiCall* call;
  WsgiHost* host;
};

const char kCapsuleName[] = "resumelb.request";

CallContext* ContextFrom(PyObject* capsule) {
  return static_cast<CallContext*>(PyCapsule_GetPointer(capsule, kCapsuleName));
}

std::string_view Utf8(PyObject* str) {
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(str, &n);
  return p ? std::string_view(p, static_cast<size_t>(n)) : std::string_view();
}

// Native strings go on the wire as latin-1 (PEP 3333); refuse what latin-1 cannot hold.
bool Latin1(PyObject* str, std::string* out) {
  if (PyUnicode_IS_READY(str) && PyUnicode_KIND(str) == PyUnicode_1BYTE_KIND) {
    // One byte per character is latin-1 already: no encoded copy.
    out->assign(reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(str)),
                static_cast<size_t>(PyUnicode_GET_LENGTH(str)));
    return true;
  }
  PyObject* b = PyUnicode_AsLatin1String(str);
  if (!b) return false;
  out->assign(PyBytes_AS_STRING(b), static_cast<size_t>(PyBytes_GET_SIZE(b)));
  Py_DECREF(b);
  return true;
}

// _resumelb.start(req, status, headers) -> bool
PyObject* PyStart(PyObject*, PyObject* args) {
  PyObject *capsule, *status, *headers;
  if (!PyArg_ParseTuple(args, "OUO!", &capsule, &status, &PyList_Type, &headers)) return nullptr;
  CallContext* ctx = ContextFrom(capsule);
  if (!ctx) return nullptr;
  std::string st;
  if (!Latin1(status, &st)) return nullptr;
  proto::Pairs pairs;
  Py_ssize_t n = PyList_GET_SIZE(headers);
  pairs.reserve(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(headers, i);
    PyObject *name, *value;
    if (!PyArg_ParseTuple(item, "UU", &name, &value)) return nullptr;
    std::string k, v;
    if (!Latin1(name, &k) || !Latin1(value, &v)) return nullptr;
    pairs.emplace_back(std::move(k), std::move(v));
  }
  // Never blocks (the head is held until the body or the end): the GIL stays held.
  return PyBool_FromLong(ctx->call->sink->Start(st, std::move(pairs)));
}

// _resumelb.body(req, data: bytes, more: bool) -> bool; `more`: the caller has more body
// ready at once, so small chunks may be held and leave together. Keeps the GIL unless the
// connection is backed up (or the chunk is large): then waits without it.
PyObject* PyBody(PyObject*, PyObject* args) {
  PyObject* capsule;
  Py_buffer data;
  int more = 0;
  if (!PyArg_ParseTuple(args, "Oy*|p", &capsule, &data, &more)) return nullptr;
  CallContext* ctx = ContextFrom(capsule);
  if (!ctx) {
    PyBuffer_Release(&data);
    return nullptr;
  }
  std::string_view bytes(static_cast<const char*>(data.buf), static_cast<size_t>(data.len));
  ResponseSink* sink = ctx->call->sink;
  ResponseSink::Sent sent = sink->Body(bytes, more != 0);
  bool ok = sent == ResponseSink::Sent::kOk;
  if (sent == ResponseSink::Sent::kMustWait) {
    // Body() took the data unless it is larger than a chunk (ResponseSink::Body).
    std::string_view rest = bytes.size() > proto::kPreferredChunk ? bytes : std::string_view();
    Py_BEGIN_ALLOW_THREADS
    ok = sink->BodyWait(rest);
    Py_END_ALLOW_THREADS
  }
  PyBuffer_Release(&data);
  return PyBool_FromLong(ok);
}

// _resumelb.end(req, complete: bool). Never blocks: the GIL stays held.
PyObject* PyEnd(PyObject*, PyObject* args) {
  PyObject* capsule;
  int complete;
  if (!PyArg_ParseTuple(args, "Op", &capsule, &complete)) return nullptr;
  CallContext* ctx = ContextFrom(capsule);
  if (!ctx) return nullptr;
  ctx->call->sink->End(complete != 0);
  Py_RETURN_NONE;
}

// _resumelb.trace_id(req) -> str: "<connection id>.<rno>", for log lines (built only when
// one is written).
PyObject* PyTraceId(PyObject*, PyObject* args) {
  PyObject* capsule;
  if (!PyArg_ParseTuple(args, "O", &capsule)) return nullptr;
  CallContext* ctx = ContextFrom(capsule);
  if (!ctx) return nullptr;
  std::string id = ctx->call->TraceId();
  return PyUnicode_FromStringAndSize(id.data(), static_cast<Py_ssize_t>(id.size()));
}

// _resumelb.trace(req, code, message)
PyObject* PyTrace(PyObject*, PyObject* args) {
  PyObject *capsule, *code, *msg;
  if (!PyArg_ParseTuple(args, "OUU", &capsule, &code, &msg)) return nullptr;
  CallContext* ctx = ContextFrom(capsule);
  if (!ctx) return nullptr;
  ctx->host->Trace(Utf8(code), ctx->call->TraceId(), Utf8(msg));
  Py_RETURN_NONE;
}

// _resumelb.log(level, message): Python logging levels onto glog.
PyObject* PyLog(PyObject*, PyObject* args) {
  int level;
  PyObject* msg;
  if (!PyArg_ParseTuple(args, "iU", &level, &msg)) return nullptr;
  std::string_view text = Utf8(msg);
  if (level >= 40) {
    LOG(ERROR) << text;
  } else if (level >= 30) {
    LOG(WARNING) << text;
  } else {
    LOG(INFO) << text;
  }
  Py_RETURN_NONE;
}

PyMethodDef kMethods[] = {
    {"start", PyStart, METH_VARARGS, "Send the response status and headers."},
    {"body", PyBody, METH_VARARGS, "Send response body bytes (blocks under backpressure)."},
    {"end", PyEnd, METH_VARARGS, "End the response (complete or failed)."},
    {"trace_id", PyTraceId, METH_VARARGS, "The request's trace id."},
    {"trace", PyTrace, METH_VARARGS, "Write a trace record."},
    {"log", PyLog, METH_VARARGS, "Write a log record."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_resumelb", "zkworker internals", -1, kMethods,
                       nullptr, nullptr, nullptr, nullptr};

PyObject* InitModule() { return PyModule_Create(&kModule); }

// The pending Python exception as one line: "TypeName: message". Clears it.
std::string FetchError() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  std::string out = "unknown Python error";
  if (type) {
    PyObject* name = PyObject_GetAttrString(type, "__name__");
    if (name) {
      out = std::string(Utf8(name));
      Py_DECREF(name);
    } else {
      PyErr_Clear();
    }
  }
  if (value) {
    PyObject* s = PyObject_Str(value);
    if (s) {
      std::string_view text = Utf8(s);
      if (!text.empty()) out += ": " + std::string(text);
      Py_DECREF(s);
    } else {
      PyErr_Clear();
    }
  }
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  return out;
}

PyObject* Str(std::string_view s) {
  return PyUnicode_DecodeLatin1(s.data(), static_cast<Py_ssize_t>(s.size()), nullptr);
}

// Steals both references.
void SetItem(PyObject* dict, PyObject* key, PyObject* value) {
  PyDict_SetItem(dict, key, value);
  Py_DECREF(key);
  Py_DECREF(value);
}

constexpr size_t kMaxCachedKeys = 512;
constexpr size_t kMaxCachedKeyBytes = 64;

Status CheckVirtualenv(const std::string& venv) {
  std::ifstream cfg(venv + "/pyvenv.cfg");
  if (!cfg) return Status::InvalidArgument("virtualenv " + venv + " has no pyvenv.cfg");
  std::string line;
  while (std::getline(cfg, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    auto trim = [](std::string& s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
    };
    trim(key);
    trim(value);
    if (key == "home") {
      if (value == "/usr/bin") return Status::OK();
      return Status::InvalidArgument("virtualenv " + venv + " was made by the Python in " +
                                     value + "; zkworker embeds Debian's /usr/bin/python3: "
                                     "recreate it with /usr/bin/python3 -m venv");
    }
  }
  return Status::InvalidArgument("virtualenv " + venv + ": pyvenv.cfg has no 'home' line");
}

// Prints the pending Python exception's traceback on sys.stderr and leaves the exception
// pending (for FetchError()).
void PrintPendingTraceback() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (type) PyErr_Display(type, value, tb);
  PyErr_Restore(type, value, tb);
}

}  // namespace

WsgiHost::WsgiHost(WsgiHostOptions options) : options_(std::move(options)) {}

WsgiHost::~WsgiHost() = default;

Status WsgiHost::Init() {
  if (!options_.virtualenv.empty()) {
    Status s = CheckVirtualenv(options_.virtualenv);
    if (!s.ok()) return s;
  }
  if (PyImport_AppendInittab("_resumelb", &InitModule) != 0) {
    return Status::IOError("cannot register the _resumelb module");
  }
  // UTF-8 mode: files (ini files, templates) read as UTF-8 whatever the locale (systemd
  // often gives services the C locale, where Python would default to ASCII).
  PyPreConfig preconfig;
  PyPreConfig_InitIsolatedConfig(&preconfig);
  preconfig.utf8_mode = 1;
  PyStatus pre = Py_PreInitialize(&preconfig);
  if (PyStatus_Exception(pre)) {
    return Status::IOError(std::string("cannot start Python: ") +
                           (pre.err_msg ? pre.err_msg : "unknown error"));
  }
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.install_signal_handlers = 0;
  config.parse_argv = 0;
  PyStatus st = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
  if (!PyStatus_Exception(st) && !options_.virtualenv.empty()) {
    std::wstring exe;
    std::string path = options_.virtualenv + "/bin/python3";
    exe.assign(path.begin(), path.end());
    st = PyConfig_SetString(&config, &config.executable, exe.c_str());
  }
  if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(st)) {
    return Status::IOError(std::string("cannot start Python: ") +
                           (st.err_msg ? st.err_msg : "unknown error"));
  }
  initialized_ = true;

  // sys.path: --pythonpath entries first, then those of the PYTHONPATH environment variable
  // (the interpreter is isolated, so it does not read PYTHONPATH itself; gunicorn and uWSGI
  // honour it). Empty entries are skipped.
  std::vector<std::string> path = options_.pythonpath;
  if (const char* env = getenv("PYTHONPATH")) {
    std::string_view rest = env;
    while (!rest.empty()) {
      size_t colon = rest.find(':');
      std::string_view entry = rest.substr(0, colon);
      if (!entry.empty()) path.emplace_back(entry);
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    }
  }
  PrependPythonPath(path);

  PyObject* code = Py_CompileString(kWsgiGlueSource, "<zkworker wsgi_glue.py>", Py_file_input);
  PyObject* glue = code ? PyImport_ExecCodeModule("resumelb_wsgi_glue", code) : nullptr;
  Py_XDECREF(code);
  if (!glue) return Status::IOError("cannot load the WSGI glue: " + FetchError());
  glue_ = glue;
  auto attr = [glue](const char* name) { return PyObject_GetAttrString(glue, name); };
  run_ = attr("run");
  file_input_ = attr("file_input");
  error_stream_ = attr("ErrorStream");
  file_wrapper_ = attr("FileWrapper");
  trace_cls_ = attr("TraceLog");
  PyObject* io = PyImport_ImportModule("io");
  bytes_io_ = io ? PyObject_GetAttrString(io, "BytesIO") : nullptr;
  Py_XDECREF(io);
  wsgi_version_ = Py_BuildValue("(ii)", 1, 0);
  http_ = PyUnicode_InternFromString("http");
  if (!run_ || !file_input_ || !error_stream_ || !file_wrapper_ || !trace_cls_ || !bytes_io_) {
    return Status::IOError("incomplete WSGI glue: " + FetchError());
  }
  return Status::OK();
}

void WsgiHost::PrependPythonPath(const std::vector<std::string>& dirs) {
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    PyObject* p = PyUnicode_DecodeFSDefault(it->c_str());
    PyList_Insert(sys_path, 0, p);
    Py_DECREF(p);
  }
}

StatusOr<std::map<std::string, std::string>> WsgiHost::ReadServerSection(
    const std::string& ini_path) {
  PyObject* fn = PyObject_GetAttrString(static_cast<PyObject*>(glue_), "read_server_section");
  PyObject* res = fn ? PyObject_CallFunction(fn, "s", ini_path.c_str()) : nullptr;
  Py_XDECREF(fn);
  if (!res) return Status::InvalidArgument(ini_path + ": " + FetchError());
  std::map<std::string, std::string> out;
  PyObject *key, *value;
  Py_ssize_t pos = 0;
  while (PyDict_Next(res, &pos, &key, &value)) {
    out[std::string(Utf8(key))] = std::string(Utf8(value));
  }
  Py_DECREF(res);
  return out;
}

Status WsgiHost::LoadAppSpec(const std::string& spec) {
  PyObject* fn = PyObject_GetAttrString(static_cast<PyObject*>(glue_), "load_app");
  PyObject* app = fn ? PyObject_CallFunction(fn, "s", spec.c_str()) : nullptr;
  Py_XDECREF(fn);
  if (!app) {
    if (print_load_traceback_) PrintPendingTraceback();
    return Status::InvalidArgument("cannot load app '" + spec + "': " + FetchError());
  }
  app_ = app;
  return Status::OK();
}

Status WsgiHost::LoadPasteApp(const std::string& ini_path) {
  PyObject* fn = PyObject_GetAttrString(static_cast<PyObject*>(glue_), "load_paste_app");
  PyObject* app = fn ? PyObject_CallFunction(fn, "s", ini_path.c_str()) : nullptr;
  Py_XDECREF(fn);
  if (!app) {
    if (print_load_traceback_) PrintPendingTraceback();
    return Status::InvalidArgument("cannot load [app:main] of " + ini_path + ": " + FetchError());
  }
  app_ = app;
  return Status::OK();
}

void* WsgiHost::Key(std::string_view name) {
  auto it = keys_.find(name);
  if (it != keys_.end()) {
    Py_INCREF(static_cast<PyObject*>(it->second));
    return it->second;
  }
  PyObject* key = Str(name);
  if (key && keys_.size() < kMaxCachedKeys && name.size() <= kMaxCachedKeyBytes) {
    PyUnicode_InternInPlace(&key);
    Py_INCREF(key);
    keys_.emplace(std::string(name), key);
  }
  return key;
}

std::string WsgiCall::TraceId() const {
  return std::to_string(conn_id) + "." + std::to_string(rno);
}

void WsgiHost::ReleaseMainThread() { main_state_ = PyEval_SaveThread(); }

void WsgiHost::Trace(std::string_view code, std::string_view id, std::string_view msg) {
  if (options_.tracelog) options_.tracelog->Record(code, id, msg);
}

bool WsgiHost::Call(WsgiCall& call) {
  // Each application thread keeps one Python thread state for its whole life: the first
  // Ensure creates it and is never released, so later Ensure/Release pairs only take and
  // give back the GIL instead of creating and destroying a thread state per request.
  // (Py_FinalizeEx frees these thread states after the threads have been joined.)
  static thread_local bool primed = false;
  if (!primed) {
    PyGILState_Ensure();
    PyEval_SaveThread();
    primed = true;
  }
  PyGILState_STATE gil = PyGILState_Ensure();
  CallContext ctx{&call, this};
  bool complete = false;
  PyObject* environ = PyDict_New();
  std::string method;
  bool has_scheme = false;
  auto key = [this](std::string_view name) { return static_cast<PyObject*>(Key(name)); };
  for (const auto& [k, v] : *call.environ) {
    SetItem(environ, key(k), Str(v));
    if (k == "REQUEST_METHOD") method = v;
    if (k == "wsgi.url_scheme") has_scheme = true;
  }
  // A chunked upload arrives without CONTENT_LENGTH: the app sees what was received. A
  // request without a body has none (as with gunicorn), unless the client sent one.
  if (call.body_size > 0) {
    SetItem(environ, key("CONTENT_LENGTH"),
            PyUnicode_FromString(std::to_string(call.body_size).c_str()));
  }
  Py_INCREF(static_cast<PyObject*>(wsgi_version_));
  SetItem(environ, key("wsgi.version"), static_cast<PyObject*>(wsgi_version_));
  if (!has_scheme) {
    Py_INCREF(static_cast<PyObject*>(http_));
    SetItem(environ, key("wsgi.url_scheme"), static_cast<PyObject*>(http_));
  }
  PyObject* input;
  if (call.body_fd >= 0) {
    lseek(call.body_fd, 0, SEEK_SET);
    input = PyObject_CallFunction(static_cast<PyObject*>(file_input_), "i", call.body_fd);
    if (input) call.body_fd = -1;  // now owned by the Python file object
  } else {
    PyObject* b = PyBytes_FromStringAndSize(call.memory_body.data(),
                                            static_cast<Py_ssize_t>(call.memory_body.size()));
    input = PyObject_CallOneArg(static_cast<PyObject*>(bytes_io_), b);
    Py_DECREF(b);
  }
  PyObject* errors = PyObject_CallNoArgs(static_cast<PyObject*>(error_stream_));
  PyObject* capsule = PyCapsule_New(&ctx, kCapsuleName, nullptr);
  if (!input || !errors || !capsule) {
    LOG(ERROR) << "cannot set up request " << call.TraceId() << ": " << FetchError();
    Py_XDECREF(input);
    Py_XDECREF(errors);
    Py_XDECREF(capsule);
    Py_DECREF(environ);
    PyGILState_Release(gil);
    if (call.sink->Start("500 Internal Server Error", {{"Content-Length", "0"}})) {
      call.sink->End(true);
    }
    return false;
  }
  SetItem(environ, key("wsgi.input"), input);
  SetItem(environ, key("wsgi.errors"), errors);
  SetItem(environ, key("wsgi.multithread"), PyBool_FromLong(options_.threads > 1));
  SetItem(environ, key("wsgi.multiprocess"), PyBool_FromLong(1));
  SetItem(environ, key("wsgi.run_once"), PyBool_FromLong(0));
  Py_INCREF(static_cast<PyObject*>(file_wrapper_));
  SetItem(environ, key("wsgi.file_wrapper"), static_cast<PyObject*>(file_wrapper_));
  SetItem(environ, key("zc.resumelb.request_class"), Str(call.request_class));
  if (lb_addr_ == nullptr || lb_addr_port_ != call.lb_port || lb_addr_ip_ != call.lb_ip) {
    Py_XDECREF(static_cast<PyObject*>(lb_addr_));
    lb_addr_ = Py_BuildValue("(si)", call.lb_ip.c_str(), call.lb_port);  // a tuple: shareable
    lb_addr_ip_ = call.lb_ip;
    lb_addr_port_ = call.lb_port;
  }
  Py_XINCREF(static_cast<PyObject*>(lb_addr_));
  SetItem(environ, key("zc.resumelb.lb_addr"), static_cast<PyObject*>(lb_addr_));
  SetItem(environ, key("zc.resumelb.time"), PyFloat_FromDouble(EpochSeconds()));
  bool tracing = options_.tracelog != nullptr;
  if (tracing) {
    PyObject* tl = PyObject_CallOneArg(static_cast<PyObject*>(trace_cls_), capsule);
    if (tl) SetItem(environ, key(options_.tracelog_key), tl);
  }
  PyObject* res = PyObject_CallFunction(static_cast<PyObject*>(run_), "OOOOO",
                                        static_cast<PyObject*>(app_), environ, capsule,
                                        method == "HEAD" ? Py_True : Py_False,
                                        tracing ? Py_True : Py_False);
  if (res) {
    complete = PyObject_IsTrue(res) == 1;
    Py_DECREF(res);
  } else {
    // Only a bug in the glue or a BaseException (e.g. SystemExit) from the app gets here.
    LOG(ERROR) << "request " << call.TraceId() << " failed in the WSGI glue: " << FetchError();
    call.sink->End(false);
  }
  // The capsule may outlive the call if the app kept a reference: make it point nowhere.
  PyCapsule_SetPointer(capsule, reinterpret_cast<void*>(1));
  PyCapsule_SetName(capsule, "resumelb.request.finished");
  Py_DECREF(capsule);
  Py_DECREF(environ);
  PyGILState_Release(gil);
  return complete;
}

void WsgiHost::BeforeFork() { PyOS_BeforeFork(); }
void WsgiHost::AfterForkChild() { PyOS_AfterFork_Child(); }
void WsgiHost::AfterForkParent() { PyOS_AfterFork_Parent(); }

int WsgiHost::PythonThreadCount() {
  PyObject* threading = PyImport_ImportModule("threading");
  if (threading == nullptr) {
    PyErr_Clear();
    return 1;
  }
  PyObject* n = PyObject_CallMethod(threading, "active_count", nullptr);
  Py_DECREF(threading);
  if (n == nullptr) {
    PyErr_Clear();
    return 1;
  }
  long count = PyLong_AsLong(n);
  Py_DECREF(n);
  return static_cast<int>(count);
}

void WsgiHost::Finalize() {
  if (!initialized_) return;
  if (main_state_) PyEval_RestoreThread(static_cast<PyThreadState*>(main_state_));
  main_state_ = nullptr;
  for (void** p : {&app_, &run_, &file_input_, &error_stream_, &file_wrapper_, &trace_cls_,
                   &bytes_io_, &wsgi_version_, &http_, &lb_addr_, &glue_}) {
    Py_XDECREF(static_cast<PyObject*>(*p));
    *p = nullptr;
  }
  for (auto& [name, key] : keys_) Py_DECREF(static_cast<PyObject*>(key));
  keys_.clear();
  Py_FinalizeEx();
  initialized_ = false;
}

}  // namespace rlb::worker
