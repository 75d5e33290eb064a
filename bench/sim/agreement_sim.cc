// agreement-sim: several independent load balancers in front of the same workers, without
// sockets or processes (docs/benchmarks.md, "Several load balancers at scale").
//
// Each LB is a real résumé pool (zklb/resume_pool.h or zklb/balanced_pool.h) with its own PoolWorker objects for
// the same worker names, so each has its own LRU order and backlog view, as separate
// processes would. Requests (Zipf-popular classes) go to the LBs in turn; a chosen worker
// serves at once and records the request in its real ResumeTracker
// (zkworker/resume_tracker.h), which every `history` requests sends its résumé to every LB,
// as zkworker does. Reported per worker count: agreement (the share of classes, and of
// traffic, whose last choice was the same worker at every LB that saw the class), the
// cost of choosing (Get + Put on one LB, in thread CPU time, after the run), and the résumé traffic.
//
//   agreement-sim [--lbs=3] [--workers=10,100,1000] [--classes=100000] [--requests=2000000]
//                 [--history=9999] [--zipf=1.0] [--seed=1]
//                 [--pool=resume|classic|balanced|balanced-lru]
//
// Prints one JSON object per worker count. Thread rules: single-threaded.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <ctime>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "zklb/balanced_pool.h"
#include "zklb/resume_pool.h"
#include "zkworker/resume_tracker.h"

DEFINE_int32(lbs, 3, "independent load balancers");
DEFINE_string(workers, "10,100,1000", "comma-separated worker counts, one run each");
DEFINE_int32(classes, 100000, "request classes (Zipf popularity)");
DEFINE_int64(requests, 2000000, "requests per run, spread over the LBs in turn");
DEFINE_int32(history, 9999, "a worker sends its résumé every this many requests");
DEFINE_double(zipf, 1.0, "Zipf exponent of class popularity");
DEFINE_string(pool, "resume",
              "resume (consistent-hash placement), classic (LRU placement), balanced (the "
              "balanced pool, ring placement) or balanced-lru");
DEFINE_int32(seed, 1, "random seed");

namespace rlb::sim {
namespace {

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Worker {
  std::string name;
  std::unique_ptr<worker::ResumeTracker> tracker;
  std::vector<lb::PoolWorkerPtr> at_lb;  // this worker as each LB knows it
  int64_t resumes_sent = 0;
  int64_t resume_entries_sent = 0;
};

void RunOne(int nworkers) {
  const lb::ClassPlacement placement = FLAGS_pool == "classic" || FLAGS_pool == "balanced-lru"
                                           ? lb::ClassPlacement::kLeastRecentlyUsed
                                           : lb::ClassPlacement::kHashRing;
  lb::PoolSettings settings;  // zkresumelb's defaults (variance 1)
  std::vector<std::unique_ptr<lb::Pool>> lbs;
  for (int i = 0; i < FLAGS_lbs; ++i) {
    if (FLAGS_pool.rfind("balanced", 0) == 0) {
      lbs.push_back(lb::NewBalancedPool(settings, lb::BalancedParams{}, false));
      lbs.back()->SetClassPlacement(placement);
    } else {
      lbs.push_back(lb::NewResumePool(settings, false, placement));
    }
  }

  std::vector<Worker> workers(nworkers);
  std::unordered_map<const lb::PoolWorker*, int> index;
  for (int w = 0; w < nworkers; ++w) {
    workers[w].name = "10." + std::to_string(w / 250) + "." + std::to_string(w % 250) + ".1:8080";
    workers[w].tracker = std::make_unique<worker::ResumeTracker>(FLAGS_history, 0);
    for (int i = 0; i < FLAGS_lbs; ++i) {
      workers[w].at_lb.push_back(std::make_shared<lb::PoolWorker>(workers[w].name, std::nullopt));
      index[workers[w].at_lb[i].get()] = w;
    }
  }
  // Each LB learns of the workers in its own order (ZooKeeper listings arrive at different
  // times; resumelb users list addresses in their own order).
  std::mt19937_64 rng(FLAGS_seed);
  for (int i = 0; i < FLAGS_lbs; ++i) {
    std::vector<int> order(nworkers);
    for (int w = 0; w < nworkers; ++w) order[w] = w;
    std::shuffle(order.begin(), order.end(), rng);
    for (int w : order) lbs[i]->NewResume(workers[w].at_lb[i], {});
  }

  // Zipf popularity by inverse-CDF sampling.
  std::vector<double> cdf(FLAGS_classes);
  double total = 0;
  for (int c = 0; c < FLAGS_classes; ++c) {
    total += 1.0 / std::pow(c + 1, FLAGS_zipf);
    cdf[c] = total;
  }
  std::vector<std::string> names(FLAGS_classes);
  for (int c = 0; c < FLAGS_classes; ++c) names[c] = "site" + std::to_string(c) + ".example";
  std::uniform_real_distribution<double> uniform(0, total);

  // last[c * lbs + i]: the worker LB i last chose for class c (-1: never asked).
  std::vector<int> last(static_cast<size_t>(FLAGS_classes) * FLAGS_lbs, -1);
  std::vector<int64_t> traffic(FLAGS_classes, 0);
  for (int64_t r = 0; r < FLAGS_requests; ++r) {
    const int c = static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), uniform(rng)) -
                                   cdf.begin());
    const int i = static_cast<int>(r % FLAGS_lbs);
    lb::PoolWorkerPtr chosen = lbs[i]->Get(names[c]);
    const int w = index.at(chosen.get());
    last[static_cast<size_t>(c) * FLAGS_lbs + i] = w;
    ++traffic[c];
    lbs[i]->Put(chosen);
    Worker& worker = workers[w];
    if (worker.tracker->Record(names[c], 0.001)) {
      auto snapshot = worker.tracker->Snapshot();
      lb::Resume resume(snapshot.begin(), snapshot.end());
      for (int j = 0; j < FLAGS_lbs; ++j) lbs[j]->NewResume(worker.at_lb[j], resume);
      ++worker.resumes_sent;
      worker.resume_entries_sent += static_cast<int64_t>(resume.size());
    }
  }

  // The cost of choosing, measured after the run on LB 0 alone: Get + Put for 200,000 more
  // requests, in thread CPU time (other processes on the machine do not count).
  const int64_t kTimed = 200000;
  std::vector<int> timed_classes(kTimed);
  for (int64_t k = 0; k < kTimed; ++k) {
    timed_classes[k] = static_cast<int>(
        std::lower_bound(cdf.begin(), cdf.end(), uniform(rng)) - cdf.begin());
  }
  const double cpu_start = ThreadCpuSeconds();
  for (int64_t k = 0; k < kTimed; ++k) lbs[0]->Put(lbs[0]->Get(names[timed_classes[k]]));
  const double choose_ns = (ThreadCpuSeconds() - cpu_start) * 1e9 / kTimed;

  int64_t seen_by_all = 0, agreeing = 0, traffic_all = 0, traffic_agreeing = 0;
  for (int c = 0; c < FLAGS_classes; ++c) {
    const int* row = &last[static_cast<size_t>(c) * FLAGS_lbs];
    bool all = true, same = true;
    for (int i = 0; i < FLAGS_lbs; ++i) {
      all = all && row[i] >= 0;
      same = same && row[i] == row[0];
    }
    if (!all) continue;
    ++seen_by_all;
    traffic_all += traffic[c];
    if (same) {
      ++agreeing;
      traffic_agreeing += traffic[c];
    }
  }
  int64_t resumes = 0, entries = 0;
  for (const Worker& w : workers) {
    resumes += w.resumes_sent;
    entries += w.resume_entries_sent;
  }
  std::printf(
      "{\"pool\": \"%s\", \"lbs\": %d, \"workers\": %d, \"classes\": %d, \"requests\": %lld, "
      "\"history\": %d, \"classes_seen_by_every_lb\": %lld, \"classes_agreeing\": %.4f, "
      "\"traffic_agreeing\": %.4f, \"choose_ns\": %.1f, "
      "\"resumes_per_1000_requests\": %.3f, \"resume_entries_per_request\": %.3f}\n",
      FLAGS_pool.c_str(), FLAGS_lbs, nworkers, FLAGS_classes,
      static_cast<long long>(FLAGS_requests), FLAGS_history,
      static_cast<long long>(seen_by_all),
      seen_by_all ? static_cast<double>(agreeing) / seen_by_all : 0.0,
      traffic_all ? static_cast<double>(traffic_agreeing) / traffic_all : 0.0,
      choose_ns,
      1000.0 * resumes / FLAGS_requests,
      static_cast<double>(entries) * FLAGS_lbs / FLAGS_requests);
  std::fflush(stdout);
}

}  // namespace
}  // namespace rlb::sim

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "agreement-sim: several independent LBs in front of the same workers; prints the\n"
      "agreement on each class's worker, the cost of choosing and the résumé traffic.\n"
      "docs/benchmarks.md, \"Several load balancers at scale\", has the results.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_minloglevel = google::GLOG_WARNING;  // the pools log each résumé at INFO
  if (FLAGS_lbs < 1 || FLAGS_classes < 1 || FLAGS_requests < 1 || FLAGS_history < 1 ||
      !(FLAGS_pool == "resume" || FLAGS_pool == "classic" || FLAGS_pool == "balanced" ||
        FLAGS_pool == "balanced-lru")) {
    std::fprintf(stderr, "agreement-sim: --lbs, --classes, --requests, --history must be >= 1 "
                         "and --pool resume, classic, balanced or balanced-lru\n");
    return 2;
  }
  std::istringstream counts(FLAGS_workers);
  for (std::string part; std::getline(counts, part, ',');) {
    char* end = nullptr;
    long n = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || n < 1 || n > 100000) {
      std::fprintf(stderr, "agreement-sim: --workers: '%s' is not a worker count\n",
                   part.c_str());
      return 2;
    }
    rlb::sim::RunOne(static_cast<int>(n));
  }
  return 0;
}
