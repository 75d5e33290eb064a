// Tests for the pool the LB command line builds (NewPoolFromOptions): the pool named by
// --pool, its placement, and --max_classes reaching the pool's class limits. glog is
// included first and its CHECK dropped, so CHECK is Catch's.
#include <glog/logging.h>
#undef CHECK
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "zklb/lb_command_line.h"
#include "zklb/lb_options.h"

namespace rlb::lb {
namespace {

const bool kQuietLogs = (FLAGS_minloglevel = google::GLOG_WARNING, true);

// Two workers, `n` distinct new classes each answered at once; returns the (worker, class)
// entries the pool keeps in the workers' résumés.
size_t EntriesAfterNewClasses(const LbOptions& options, int n) {
  std::unique_ptr<Pool> pool = NewPoolFromOptions(options, PoolSettings{});
  auto w1 = std::make_shared<PoolWorker>("127.0.0.1:1", std::nullopt);
  auto w2 = std::make_shared<PoolWorker>("127.0.0.1:2", std::nullopt);
  pool->NewResume(w1, {});
  pool->NewResume(w2, {});
  for (int i = 0; i < n; ++i) {
    PoolWorkerPtr w = pool->Get("class" + std::to_string(i));
    REQUIRE(w != nullptr);
    pool->Put(w);
  }
  return w1->resume().size() + w2->resume().size();
}

TEST_CASE("pool options: the default pool is balanced, classic places by LRU",
          "[pool_options]") {
  LbOptions o;
  CHECK(o.pool == "balanced");
  CHECK(std::string(NewPoolFromOptions(o, PoolSettings{})->ClassPlacementName()) == "lru");
  o.placement = "ring";
  CHECK(std::string(NewPoolFromOptions(o, PoolSettings{})->ClassPlacementName()) == "ring");
  o.pool = "classic";
  o.placement = "lru";
  CHECK(std::string(NewPoolFromOptions(o, PoolSettings{})->ClassPlacementName()) == "lru");
}

TEST_CASE("pool options: --max_classes bounds the classes every résumé pool tracks",
          "[pool_options]") {
  for (const char* kind : {"balanced", "classic", "resume"}) {
    LbOptions o;
    o.pool = kind;
    CHECK(EntriesAfterNewClasses(o, 40) == 40);  // the default limit is far away
    o.max_classes = 5;
    CHECK(EntriesAfterNewClasses(o, 40) == 5);
  }
}

}  // namespace
}  // namespace rlb::lb
