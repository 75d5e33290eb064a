// The pool simulator's event loop, workload, routers and report formats (simulator.h).
#include "bench/sim/simulator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <queue>
#include <random>
#include <unordered_map>
#include <utility>

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "zklb/balanced_pool.h"
#include "zklb/pool.h"
#include "zklb/resume_pool.h"
#include "zkworker/resume_tracker.h"

namespace rlb::sim {
namespace {

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// An LRU set of object keys with a fixed capacity.
class LruCache {
 public:
  explicit LruCache(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
    index_.reserve(capacity_ + 1);
  }
  // True on a hit; a miss inserts the key, evicting the least recently used.
  bool Access(uint64_t key) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return true;
    }
    order_.push_front(key);
    index_.emplace(key, order_.begin());
    if (order_.size() > capacity_) {
      index_.erase(order_.back());
      order_.pop_back();
    }
    return false;
  }

 private:
  size_t capacity_;
  std::list<uint64_t> order_;
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> index_;
};

// How requests are given to workers; worker ids are indexes into the simulator's list.
class Router {
 public:
  virtual ~Router() = default;
  virtual int Route(int cls) = 0;  // -1: no worker
  virtual void Done(int worker) = 0;
  virtual void Join(int worker) = 0;
  virtual void Leave(int worker) = 0;
  virtual void Resume(int /*worker*/, const std::map<std::string, double>& /*resume*/) {}
  // The initial workers have joined; the run starts.
  virtual void Start() {}
};

// The real pools, through the Pool interface.
class PoolRouter : public Router {
 public:
  PoolRouter(std::unique_ptr<lb::Pool> pool, const std::vector<std::string>* class_names)
      : pool_(std::move(pool)), class_names_(class_names) {}
  void AddWorker(int id) {
    auto pw = std::make_shared<lb::PoolWorker>("w" + std::to_string(id), std::nullopt);
    if (static_cast<size_t>(id) >= workers_.size()) workers_.resize(id + 1);
    workers_[id] = pw;
    ids_[pw.get()] = id;
  }
  int Route(int cls) override {
    lb::PoolWorkerPtr w = pool_->Get((*class_names_)[cls]);
    return w ? ids_.at(w.get()) : -1;
  }
  void Done(int worker) override { pool_->Put(workers_[worker]); }
  void Join(int worker) override {
    if (static_cast<size_t>(worker) >= workers_.size() || !workers_[worker]) AddWorker(worker);
    pool_->NewResume(workers_[worker], {});
  }
  void Leave(int worker) override { pool_->Remove(workers_[worker]); }
  void Resume(int worker, const std::map<std::string, double>& resume) override {
    if (!workers_[worker]->in_pool()) return;
    pool_->NewResume(workers_[worker], lb::Resume(resume.begin(), resume.end()));
  }

 private:
  std::unique_ptr<lb::Pool> pool_;
  const std::vector<std::string>* class_names_;
  std::vector<lb::PoolWorkerPtr> workers_;
  std::unordered_map<lb::PoolWorker*, int> ids_;
};

// A static partition of the classes, balanced by known popularity and speed.
class OracleRouter : public Router {
 public:
  OracleRouter(const std::vector<double>* popularity, const std::vector<double>* speeds)
      : pop_(popularity), speeds_(speeds) {}
  int Route(int cls) override { return assign_.empty() ? -1 : assign_[cls]; }
  void Done(int) override {}
  void Join(int worker) override {
    active_.push_back(worker);
    if (started_) Rebalance();
  }
  void Start() override {
    started_ = true;
    Rebalance();
  }
  void Leave(int worker) override {
    active_.erase(std::remove(active_.begin(), active_.end(), worker), active_.end());
    Rebalance();
  }

 private:
  // First assignment: greedy LPT. Later: the departed workers' classes go greedily to the
  // least loaded, then single classes move from the most to the least loaded worker while
  // that lowers the maximum (few moves).
  void Rebalance() {
    const int n = static_cast<int>(pop_->size());
    if (active_.empty()) {
      assign_.clear();
      return;
    }
    std::vector<double> load(speeds_->size(), 0);
    std::vector<char> is_active(speeds_->size(), 0);
    for (int w : active_) is_active[w] = 1;
    auto rel = [&](int w) { return load[w] / (*speeds_)[w]; };
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return (*pop_)[a] > (*pop_)[b]; });
    if (assign_.empty()) assign_.assign(n, -1);
    for (int c = 0; c < n; ++c) {
      if (assign_[c] >= 0 && is_active[assign_[c]]) load[assign_[c]] += (*pop_)[c];
    }
    for (int c : order) {
      if (assign_[c] >= 0 && is_active[assign_[c]]) continue;
      int best = active_[0];
      for (int w : active_) if (rel(w) < rel(best)) best = w;
      assign_[c] = best;
      load[best] += (*pop_)[c];
    }
    std::vector<std::vector<int>> classes_of(speeds_->size());
    for (int c : order) classes_of[assign_[c]].push_back(c);  // most popular first
    for (int moves = 0; moves < 10 * n; ++moves) {
      int hi = active_[0], lo = active_[0];
      for (int w : active_) {
        if (rel(w) > rel(hi)) hi = w;
        if (rel(w) < rel(lo)) lo = w;
      }
      int pick = -1;
      for (size_t i = 0; i < classes_of[hi].size(); ++i) {
        const int c = classes_of[hi][i];
        const double p = (*pop_)[c];
        const double new_hi = (load[hi] - p) / (*speeds_)[hi];
        const double new_lo = (load[lo] + p) / (*speeds_)[lo];
        if (std::max(new_hi, new_lo) < rel(hi) - 1e-12) {
          pick = static_cast<int>(i);
          break;
        }
      }
      if (pick < 0) break;
      const int c = classes_of[hi][pick];
      classes_of[hi].erase(classes_of[hi].begin() + pick);
      classes_of[lo].push_back(c);
      load[hi] -= (*pop_)[c];
      load[lo] += (*pop_)[c];
      assign_[c] = lo;
    }
  }

  const std::vector<double>* pop_;
  const std::vector<double>* speeds_;
  std::vector<int> active_;
  std::vector<int> assign_;
  bool started_ = false;
};

// Consistent hashing of the class with bounded loads (HAProxy's hash-balance-factor:
// a worker may hold at most ceil(factor * (in flight + 1) / n)); factor 0: unbounded.
class HashRouter : public Router {
 public:
  HashRouter(double factor, int classes) : factor_(factor) {
    class_hash_.resize(classes);
    for (int c = 0; c < classes; ++c) class_hash_[c] = SplitMix(0xC1A55ull + c);
  }
  int Route(int cls) override {
    if (ring_.empty()) return -1;
    auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(class_hash_[cls], 0));
    size_t i = static_cast<size_t>(it - ring_.begin()) % ring_.size();
    int chosen = ring_[i].second;
    if (factor_ > 0) {
      const double limit = std::ceil(factor_ * (total_ + 1) / static_cast<double>(active_));
      for (size_t k = 0; k < ring_.size(); ++k) {
        const int w = ring_[(i + k) % ring_.size()].second;
        if (inflight_[w] + 1 <= limit) {
          chosen = w;
          break;
        }
      }
    }
    ++inflight_[chosen];
    ++total_;
    return chosen;
  }
  void Done(int worker) override {
    --inflight_[worker];
    --total_;
  }
  void Join(int worker) override {
    if (static_cast<size_t>(worker) >= inflight_.size()) inflight_.resize(worker + 1, 0);
    for (int v = 0; v < kPoints; ++v) {
      ring_.emplace_back(SplitMix((static_cast<uint64_t>(worker) << 16) + v), worker);
    }
    std::sort(ring_.begin(), ring_.end());
    ++active_;
  }
  void Leave(int worker) override {
    ring_.erase(std::remove_if(ring_.begin(), ring_.end(),
                               [worker](const auto& e) { return e.second == worker; }),
                ring_.end());
    --active_;
  }

 private:
  static constexpr int kPoints = 100;
  double factor_;
  std::vector<uint64_t> class_hash_;
  std::vector<std::pair<uint64_t, int>> ring_;
  std::vector<int> inflight_;
  int total_ = 0;
  int active_ = 0;
};

struct Request {
  int cls = 0;
  int client = -1;  // closed loop: who sends the next one
  int worker = -1;
  double arrival = 0;
  double service = 0;
};

struct SimWorker {
  double speed = 1;
  bool active = false;
  int busy = 0;
  std::deque<int> queue;  // request ids waiting for a thread
  std::unique_ptr<LruCache> cache;
  std::unique_ptr<worker::ResumeTracker> tracker;
  uint64_t phase_requests = 0;
};

enum Kind { kArrival = 0, kDone = 1, kPhase = 2 };
struct Event {
  double t;
  uint64_t seq;
  int kind;
  int64_t a;  // arrival: client (-1: open loop); done: request id; phase: index
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

class Simulation {
 public:
  Simulation(const Scenario& s, const Policy& p) : s_(s), policy_(p), rng_(s.seed) {}
  Status Run(SimResult* out);

 private:
  void SetPopularity(double zipf);
  int SampleClass();
  int AddWorker(double speed);
  void Issue(double t, int client);
  void Dispatch(double t, int rid);
  void StartService(double t, int w, int rid);
  void Complete(double t, int rid);
  void StartPhase(double t, size_t index);
  void EndPhase(double t);
  void Push(double t, int kind, int64_t a) { events_.push({t, seq_++, kind, a}); }

  const Scenario& s_;
  const Policy& policy_;
  std::mt19937_64 rng_;
  std::vector<std::string> class_names_;
  std::vector<int> class_at_rank_;
  std::vector<double> cdf_;         // over ranks
  std::vector<double> popularity_;  // per class
  std::vector<double> speeds_;      // per worker id
  std::vector<SimWorker> workers_;
  std::unique_ptr<Router> router_;
  PoolRouter* pool_router_ = nullptr;
  std::vector<Request> requests_;
  std::vector<int> free_ids_;
  std::deque<int> lb_waiting_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  uint64_t seq_ = 0;
  double now_ = 0;  // the clock the balanced pool reads
  size_t cache_entries_ = 0;
  int last_added_ = -1;
  uint64_t issued_ = 0, completed_ = 0;

  // The current phase's counters.
  const PhaseSpec* phase_ = nullptr;
  double phase_start_ = 0;
  uint64_t phase_completed_ = 0, phase_hits_ = 0, phase_accesses_ = 0;
  std::vector<float> latencies_;
  std::vector<std::pair<uint64_t, uint64_t>> bins_;  // (hits, accesses)
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> phase_bins_;
  SimResult* out_ = nullptr;
};

void Simulation::SetPopularity(double zipf) {
  const int n = s_.classes;
  cdf_.resize(n);
  double sum = 0;
  for (int r = 0; r < n; ++r) {
    sum += 1.0 / std::pow(r + 1.0, zipf);
    cdf_[r] = sum;
  }
  popularity_.assign(n, 0);
  for (int r = 0; r < n; ++r) {
    popularity_[class_at_rank_[r]] = (cdf_[r] - (r ? cdf_[r - 1] : 0)) / sum;
  }
}

int Simulation::SampleClass() {
  std::uniform_real_distribution<double> u(0, cdf_.back());
  const double x = u(rng_);
  size_t r = static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), x) - cdf_.begin());
  return class_at_rank_[std::min(r, cdf_.size() - 1)];
}

int Simulation::AddWorker(double speed) {
  const int id = static_cast<int>(workers_.size());
  workers_.emplace_back();
  SimWorker& w = workers_.back();
  w.speed = speed;
  w.active = true;
  w.cache = std::make_unique<LruCache>(cache_entries_);
  w.tracker = std::make_unique<worker::ResumeTracker>(s_.resume_history, 0);
  speeds_.push_back(speed);
  if (pool_router_) pool_router_->AddWorker(id);
  router_->Join(id);
  last_added_ = id;
  return id;
}

void Simulation::Issue(double t, int client) {
  int rid;
  if (!free_ids_.empty()) {
    rid = free_ids_.back();
    free_ids_.pop_back();
  } else {
    rid = static_cast<int>(requests_.size());
    requests_.emplace_back();
  }
  Request& r = requests_[rid];
  r.cls = SampleClass();
  r.client = client;
  r.arrival = t;
  r.worker = -1;
  ++issued_;
  Dispatch(t, rid);
}

void Simulation::Dispatch(double t, int rid) {
  const int w = router_->Route(requests_[rid].cls);
  if (w < 0) {
    lb_waiting_.push_back(rid);
    return;
  }
  requests_[rid].worker = w;
  SimWorker& worker = workers_[w];
  if (worker.busy < s_.threads) {
    StartService(t, w, rid);
  } else {
    worker.queue.push_back(rid);
  }
}

void Simulation::StartService(double t, int w, int rid) {
  SimWorker& worker = workers_[w];
  Request& r = requests_[rid];
  ++worker.busy;
  int misses = 0;
  const uint64_t base = static_cast<uint64_t>(r.cls) * s_.objects_per_class;
  std::uniform_int_distribution<int> obj(0, s_.objects_per_class - 1);
  for (int i = 0; i < s_.objects_per_request; ++i) {
    if (!worker.cache->Access(base + obj(rng_))) ++misses;
  }
  phase_accesses_ += s_.objects_per_request;
  phase_hits_ += s_.objects_per_request - misses;
  const size_t bin = static_cast<size_t>((t - phase_start_) / s_.bin_seconds);
  if (bin < bins_.size()) {
    bins_[bin].first += s_.objects_per_request - misses;
    bins_[bin].second += s_.objects_per_request;
  }
  r.service = (s_.base_ms + misses * s_.miss_ms) / 1000.0 / worker.speed;
  Push(t + r.service, kDone, rid);
}

void Simulation::Complete(double t, int rid) {
  Request& r = requests_[rid];
  SimWorker& worker = workers_[r.worker];
  --worker.busy;
  ++worker.phase_requests;
  ++completed_;
  ++phase_completed_;
  latencies_.push_back(static_cast<float>((t - r.arrival) * 1000));
  router_->Done(r.worker);
  if (worker.tracker->Record(class_names_[r.cls], r.service) && worker.active) {
    router_->Resume(r.worker, worker.tracker->Snapshot());
  }
  const int w = r.worker;
  const int client = r.client;
  free_ids_.push_back(rid);
  if (!worker.queue.empty()) {
    const int next = worker.queue.front();
    worker.queue.pop_front();
    StartService(t, w, next);
  }
  if (client >= 0) Issue(t, client);
}

void Simulation::StartPhase(double t, size_t index) {
  if (phase_ != nullptr) EndPhase(t);
  phase_ = &s_.phases[index];
  phase_start_ = t;
  phase_completed_ = phase_hits_ = phase_accesses_ = 0;
  latencies_.clear();
  bins_.assign(static_cast<size_t>(std::ceil(phase_->duration / s_.bin_seconds)), {0, 0});
  for (SimWorker& w : workers_) w.phase_requests = 0;
  if (phase_->zipf > 0) SetPopularity(phase_->zipf);
  if (phase_->shift) {
    std::mt19937_64 shuffle_rng(s_.seed * 7919 + index);
    std::shuffle(class_at_rank_.begin(), class_at_rank_.end(), shuffle_rng);
    SetPopularity(phase_->zipf > 0 ? phase_->zipf : s_.zipf);
  }
  for (int i = 0; i < phase_->remove_workers; ++i) {
    for (size_t w = 0; w < workers_.size(); ++w) {
      if (workers_[w].active) {
        workers_[w].active = false;
        router_->Leave(static_cast<int>(w));
        break;
      }
    }
  }
  for (int i = 0; i < phase_->add_workers; ++i) AddWorker(phase_->add_speed);
  while (!lb_waiting_.empty()) {
    const int rid = lb_waiting_.front();
    const int w = router_->Route(requests_[rid].cls);
    if (w < 0) break;
    lb_waiting_.pop_front();
    requests_[rid].worker = w;
    if (workers_[w].busy < s_.threads) {
      StartService(t, w, rid);
    } else {
      workers_[w].queue.push_back(rid);
    }
  }
}

void Simulation::EndPhase(double t) {
  if (!phase_->measured) return;
  PhaseResult p;
  p.name = phase_->name;
  p.duration = t - phase_start_;
  p.completed = phase_completed_;
  p.throughput = p.duration > 0 ? static_cast<double>(phase_completed_) / p.duration : 0;
  p.hit_rate = phase_accesses_ ? static_cast<double>(phase_hits_) / phase_accesses_ : 0;
  if (!latencies_.empty()) {
    auto pct = [this](double q) {
      size_t k = static_cast<size_t>(q * static_cast<double>(latencies_.size() - 1));
      std::nth_element(latencies_.begin(), latencies_.begin() + k, latencies_.end());
      return static_cast<double>(latencies_[k]);
    };
    p.p50_ms = pct(0.50);
    p.p99_ms = pct(0.99);
  }
  uint64_t total = 0, busiest = 0;
  double speed_sum = 0;
  int n = 0;
  for (const SimWorker& w : workers_) {
    if (!w.active) continue;
    p.worker_requests.push_back(w.phase_requests);
    total += w.phase_requests;
    busiest = std::max(busiest, w.phase_requests);
    speed_sum += w.speed;
    ++n;
  }
  if (n > 0 && total > 0) {
    const double mean = static_cast<double>(total) / n;
    p.busiest_over_mean = static_cast<double>(busiest) / mean;
    if (phase_->add_workers > 0 && last_added_ >= 0) {
      p.newest_share = static_cast<double>(workers_[last_added_].phase_requests) / mean;
    }
    for (const SimWorker& w : workers_) {
      if (!w.active) continue;
      const double share = static_cast<double>(w.phase_requests) / static_cast<double>(total);
      p.capacity_share_error =
          std::max(p.capacity_share_error, std::abs(share / (w.speed / speed_sum) - 1));
    }
  }
  out_->phases.push_back(std::move(p));
  phase_bins_.push_back(bins_);
}

Status Simulation::Run(SimResult* out) {
  if (s_.phases.empty()) return Status::InvalidArgument("a scenario needs at least one phase");
  if (s_.workers < 1 || s_.threads < 1 || s_.classes < 1 || s_.objects_per_class < 1 ||
      s_.objects_per_request < 0 || s_.resume_history < 1 || !(s_.bin_seconds > 0)) {
    return Status::InvalidArgument("scenario: workers, threads, classes, objects_per_class, "
                                   "resume_history must be >= 1, bin_seconds > 0");
  }
  if (s_.open_rate <= 0 && s_.clients < 1) {
    return Status::InvalidArgument("scenario: closed loop needs clients >= 1");
  }
  out_ = out;
  *out = SimResult();
  out->policy = policy_.Label();
  const auto wall_start = std::chrono::steady_clock::now();

  class_names_.resize(s_.classes);
  for (int c = 0; c < s_.classes; ++c) class_names_[c] = "s" + std::to_string(c) + ".example";
  class_at_rank_.resize(s_.classes);
  std::iota(class_at_rank_.begin(), class_at_rank_.end(), 0);
  SetPopularity(s_.zipf);
  cache_entries_ = static_cast<size_t>(s_.cache_factor * s_.classes * s_.objects_per_class /
                                       s_.workers);

  lb::PoolSettings settings;
  if (policy_.name == "classic" || policy_.name == "resume") {
    settings.variance = policy_.variance;
    // "resume": new classes placed on the consistent-hash ring (what LBs that see other LBs
    // use, --placement=auto); "classic": zc.resumelb's LRU placement (a lone LB's).
    auto pool = std::make_unique<PoolRouter>(
        std::make_unique<lb::ResumePool>(settings, false, policy_.limits,
                                         policy_.name == "resume"
                                             ? lb::ClassPlacement::kHashRing
                                             : lb::ClassPlacement::kLeastRecentlyUsed),
        &class_names_);
    pool_router_ = pool.get();
    router_ = std::move(pool);
  } else if (policy_.name == "balanced" || policy_.name == "balanced-ring") {
    // The pool reads simulated time through the clock it is given. "balanced-ring": its
    // candidates in ring order (what LBs that see other LBs use, --placement=auto).
    auto balanced = std::make_unique<lb::BalancedPool>(settings, policy_.balanced, false,
                                                       [this] { return now_; }, policy_.limits);
    if (policy_.name == "balanced-ring") balanced->SetClassPlacement(lb::ClassPlacement::kHashRing);
    auto pool = std::make_unique<PoolRouter>(std::move(balanced), &class_names_);
    pool_router_ = pool.get();
    router_ = std::move(pool);
  } else if (policy_.name == "classless") {
    auto pool = std::make_unique<PoolRouter>(lb::NewClasslessPool(false), &class_names_);
    pool_router_ = pool.get();
    router_ = std::move(pool);
  } else if (policy_.name == "oracle") {
    router_ = std::make_unique<OracleRouter>(&popularity_, &speeds_);
  } else if (policy_.name == "hash") {
    router_ = std::make_unique<HashRouter>(policy_.hash_factor, s_.classes);
  } else {
    return Status::InvalidArgument("unknown policy '" + policy_.name + "'");
  }
  // The oracle knows the speeds up front: grow its table before the first Join.
  speeds_.reserve(s_.workers + 64);
  workers_.reserve(s_.workers + 64);
  for (int i = 0; i < s_.workers; ++i) {
    AddWorker(static_cast<size_t>(i) < s_.speeds.size() ? s_.speeds[i] : 1.0);
  }

  router_->Start();
  double t = 0;
  for (size_t i = 0; i < s_.phases.size(); ++i) {
    Push(t, kPhase, static_cast<int64_t>(i));
    t += s_.phases[i].duration;
  }
  const double end = t;
  Push(end, kPhase, -1);
  if (s_.open_rate > 0) {
    Push(0, kArrival, -1);
  } else {
    for (int c = 0; c < s_.clients; ++c) Push(c * 1e-6, kArrival, c);
  }
  std::exponential_distribution<double> gap(s_.open_rate > 0 ? s_.open_rate : 1);
  while (!events_.empty()) {
    const Event e = events_.top();
    events_.pop();
    now_ = e.t;
    if (e.kind == kPhase) {
      if (e.a < 0) {
        EndPhase(e.t);
        break;
      }
      StartPhase(e.t, static_cast<size_t>(e.a));
    } else if (e.kind == kArrival) {
      Issue(e.t, static_cast<int>(e.a));
      if (e.a < 0) Push(e.t + gap(rng_), kArrival, -1);
    } else {
      Complete(e.t, static_cast<int>(e.a));
    }
  }
  // Recovery against the first measured phase's hit rate.
  if (!out->phases.empty()) {
    const double reference = out->phases[0].hit_rate;
    for (size_t i = 0; i < out->phases.size(); ++i) {
      const auto& bins = phase_bins_[i];
      int last_low = -1;
      for (size_t b = 0; b < bins.size(); ++b) {
        const double rate = bins[b].second ? static_cast<double>(bins[b].first) /
                                                 static_cast<double>(bins[b].second)
                                           : 1.0;
        if (rate < 0.95 * reference) last_low = static_cast<int>(b);
      }
      out->phases[i].recovery_s =
          last_low < 0 ? 0
          : last_low + 1 == static_cast<int>(bins.size())
              ? -1
              : (last_low + 1) * s_.bin_seconds;
    }
  }
  out->issued = issued_;
  out->completed = completed_;
  out->unserved = issued_ - completed_;
  out->wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return Status::OK();
}

}  // namespace

std::string Policy::Label() const {
  if (name != "hash") return name;
  if (hash_factor <= 0) return "hash-off";
  return "hash-" + std::to_string(static_cast<int>(std::lround(hash_factor * 100)));
}

Status Simulate(const Scenario& scenario, const Policy& policy, SimResult* out) {
  Simulation sim(scenario, policy);
  return sim.Run(out);
}

Status NamedScenario(const std::string& name, int scale, Scenario* out) {
  if (scale < 1) return Status::InvalidArgument("scale must be >= 1");
  Scenario s;
  s.workers = 4 * scale;
  s.classes = 40 * scale;
  s.clients = 16 * scale;
  if (name == "cache") {
    s.phases = {{"warm-up", 6, false},
                {"stationary", 6},
                {"shift", 8, true, true},
                {"add", 8, true, false, 1},
                {"remove", 8, true, false, 0, 1, 1}};
    // At scale as many workers join and leave as on 4 workers, per 4.
    s.phases[3].add_workers = scale;
    s.phases[4].remove_workers = scale;
  } else if (name == "hot12" || name == "hot14") {
    s.zipf = name == "hot12" ? 1.2 : 1.4;
    s.phases = {{"warm-up", 5, false}, {"hot", 6}};
  } else if (name == "halfspeed") {
    for (int i = 0; i < s.workers; ++i) s.speeds.push_back(i % 4 == 0 ? 0.5 : 1.0);
    s.phases = {{"warm-up", 6, false}, {"stationary", 10}};
  } else {
    return Status::InvalidArgument("unknown scenario '" + name +
                                   "' (cache, hot12, hot14, halfspeed)");
  }
  *out = std::move(s);
  return Status::OK();
}

std::string ToJson(const std::string& scenario_name, const Scenario& s,
                   const std::vector<SimResult>& results) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("scenario");
  w.StartObject();
  w.Key("name"); w.String(scenario_name.c_str());
  w.Key("workers"); w.Int(s.workers);
  w.Key("threads"); w.Int(s.threads);
  w.Key("classes"); w.Int(s.classes);
  w.Key("zipf"); w.Double(s.zipf);
  w.Key("objects_per_class"); w.Int(s.objects_per_class);
  w.Key("objects_per_request"); w.Int(s.objects_per_request);
  w.Key("cache_factor"); w.Double(s.cache_factor);
  w.Key("base_ms"); w.Double(s.base_ms);
  w.Key("miss_ms"); w.Double(s.miss_ms);
  w.Key("clients"); w.Int(s.open_rate > 0 ? 0 : s.clients);
  w.Key("open_rate"); w.Double(s.open_rate);
  w.Key("resume_history"); w.Int(s.resume_history);
  w.Key("seed"); w.Uint64(s.seed);
  w.Key("speeds");
  w.StartArray();
  for (double v : s.speeds) w.Double(v);
  w.EndArray();
  w.EndObject();
  w.Key("results");
  w.StartArray();
  for (const SimResult& r : results) {
    w.StartObject();
    w.Key("policy"); w.String(r.policy.c_str());
    w.Key("issued"); w.Uint64(r.issued);
    w.Key("completed"); w.Uint64(r.completed);
    w.Key("unserved"); w.Uint64(r.unserved);
    w.Key("wall_seconds"); w.Double(r.wall_seconds);
    w.Key("phases");
    w.StartArray();
    for (const PhaseResult& p : r.phases) {
      w.StartObject();
      w.Key("name"); w.String(p.name.c_str());
      w.Key("duration"); w.Double(p.duration);
      w.Key("completed"); w.Uint64(p.completed);
      w.Key("throughput"); w.Double(p.throughput);
      w.Key("hit_rate"); w.Double(p.hit_rate);
      w.Key("busiest_over_mean"); w.Double(p.busiest_over_mean);
      w.Key("p50_ms"); w.Double(p.p50_ms);
      w.Key("p99_ms"); w.Double(p.p99_ms);
      w.Key("recovery_s"); w.Double(p.recovery_s);
      w.Key("newest_share"); w.Double(p.newest_share);
      w.Key("capacity_share_error"); w.Double(p.capacity_share_error);
      w.Key("worker_requests");
      w.StartArray();
      for (uint64_t n : p.worker_requests) w.Uint64(n);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

std::string ToTable(const std::vector<SimResult>& results) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-11s %9s %6s %6s %7s %7s %6s %6s %6s\n", "policy",
                "phase", "req/s", "hit%", "b/mean", "p50ms", "p99ms", "recov", "newest",
                "caperr");
  out += line;
  for (const SimResult& r : results) {
    for (const PhaseResult& p : r.phases) {
      std::snprintf(line, sizeof line,
                    "%-12s %-11s %9.0f %6.1f %6.2f %7.1f %7.1f %6.1f %6.2f %6.2f\n",
                    r.policy.c_str(), p.name.c_str(), p.throughput, 100 * p.hit_rate,
                    p.busiest_over_mean, p.p50_ms, p.p99_ms, p.recovery_s, p.newest_share,
                    p.capacity_share_error);
      out += line;
    }
  }
  return out;
}

}  // namespace rlb::sim
