// zklb/fd_budget.h: how the open-file limit is shared between worker links and clients.
#include "zklb/fd_budget.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>

using rlb::lb::FdBudget;

TEST_CASE("fd budget: links leave the client reserve and the margin", "[fd]") {
  // 256 descriptors, 20 open at start, no --max_connections: a quarter (64) for clients.
  FdBudget b(256, 20, 0);
  CHECK(b.client_reserve() == 64);
  CHECK(b.link_capacity() == 256 - 20 - FdBudget::kMarginFds - 64);
  for (uint64_t i = 0; i < b.link_capacity(); ++i) REQUIRE(b.TryAcquireLink());
  CHECK_FALSE(b.TryAcquireLink());  // full: the link waits
  CHECK(b.links_open() == b.link_capacity());
  b.ReleaseLink();
  CHECK(b.TryAcquireLink());  // a descriptor freed: the next attempt gets it
  // Clients fit in what links and the margin leave: the whole reserve.
  CHECK(b.ClientFits(63));
  CHECK_FALSE(b.ClientFits(64));
}

TEST_CASE("fd budget: --max_connections is the client reserve", "[fd]") {
  FdBudget b(200, 16, 10);
  CHECK(b.client_reserve() == 10);
  CHECK(b.link_capacity() == 200 - 16 - FdBudget::kMarginFds - 10);
  // What N workers need: room for them next to the fixed part and the clients.
  CHECK(b.Needed(100) == 16 + FdBudget::kMarginFds + 100 + 10);
  FdBudget fits(b.Needed(100), 16, 10);
  CHECK(fits.link_capacity() == 100);
}

TEST_CASE("fd budget: Needed() without --max_connections leaves a quarter to clients", "[fd]") {
  for (size_t workers : {0, 1, 7, 100, 1000}) {
    FdBudget probe(1 << 20, 24, 0);
    FdBudget at_need(probe.Needed(workers), 24, 0);
    INFO(workers);
    CHECK(at_need.link_capacity() >= workers);
    // Not more than that: the fixed part and the links are three quarters of it.
    CHECK(probe.Needed(workers) <= (24 + FdBudget::kMarginFds + workers) * 4 / 3 + 1);
  }
}

TEST_CASE("fd budget: a limit below the fixed part leaves no link", "[fd]") {
  FdBudget b(40, 30, 0);
  CHECK(b.link_capacity() == 0);
  CHECK_FALSE(b.TryAcquireLink());
}

TEST_CASE("fd budget: read off this process", "[fd]") {
  rlimit rl{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  FdBudget b = FdBudget::ForThisProcess(0);
  if (rl.rlim_cur != RLIM_INFINITY) CHECK(b.limit() == rl.rlim_cur);
  CHECK(b.base() >= 3);  // at least stdin, stdout, stderr
  CHECK(b.base() < b.limit());
}
