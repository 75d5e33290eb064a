// status/: the status document (RenderLbStatusJson: keys, order and types are what
// get-lb-status, the tests and operators read) and the StatusServer serving it.
#include "status/lb_status.h"
#include "status/status_server.h"

#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "common/loop_mailbox.h"
#include "common/temp_file.h"
#include "status/tool_client.h"

namespace {

rlb::LbStatusSnapshot Sample() {
  rlb::LbStatusSnapshot s;
  s.backlog = 3;
  s.mean_backlog = 1.5;
  s.workers = {{"127.0.0.1:8001", 2, 0.25, 1700000000.5, 10},
               {"127.0.0.1:8002", 1, std::nullopt, std::nullopt, 0}};
  s.links = {{"127.0.0.1:8001", true, true, "2", 4, 17, 2, std::nullopt, std::nullopt, "ready",
              0, false},
             {"127.0.0.1:8003", false, false, std::nullopt, 0, 0, 0, "connection refused",
              1700000001.25, "idle", 3, true}};
  s.pool = {"resume", true, "2", 1.0, 9, 0.5, "lru"};
  s.totals = {20, 18, 1, 2, 3, 4, 5, 6, 7, 8, 11, 9, 10};
  s.draining = true;
  s.loop_lag = {0.5, 12.25, 40.0};
  s.version = "1.2.3";
  s.start_time = 1700000000.0;
  s.uptime = 2.5;
  s.requests.by_status_class[2] = 15;
  s.requests.by_status_class[4] = 3;
  s.requests.latency.count = 18;
  s.requests.latency.sum = 0.75;
  s.requests.request_body_bytes = 100;
  s.requests.response_body_bytes = 2000;
  rlb::LbStatusSnapshot::Class shop;
  shop.name = "shop.example";
  shop.requests = 12;
  shop.latency.sum = 0.5;
  shop.workers = {{"127.0.0.1:8001", 2.5}};
  s.requests.classes = {shop};
  s.requests.other.name = "other";
  s.requests.other.requests = 6;
  s.requests.other.latency.sum = 0.25;
  return s;
}

}  // namespace

TEST_CASE("RenderLbStatusJson: the document's keys, order and types", "[status]") {
  CHECK(rlb::RenderLbStatusJson(Sample()) ==
        R"({"backlog":3,"mean_backlog":1.5,)"
        R"("workers":[["127.0.0.1:8001",2,0.25,1700000000.5],["127.0.0.1:8002",1,null,null]],)"
        R"("workers_ex":[["127.0.0.1:8001",10],["127.0.0.1:8002",0]],)"
        R"("worker_details":[{"name":"127.0.0.1:8001","connected":true,"in_pool":true,)"
        R"("version":"2","resume_size":4,"requests":17,"in_flight":2,"last_error":null,)"
        R"("last_error_time":null,"state":"ready","failures":0,"disabled":false},)"
        R"({"name":"127.0.0.1:8003","connected":false,"in_pool":false,"version":null,)"
        R"("resume_size":0,"requests":0,"in_flight":0,"last_error":"connection refused",)"
        R"("last_error_time":1700000001.25,"state":"idle","failures":3,"disabled":true}],)"
        R"("pool":{"kind":"resume","single_version":true,"active_version":"2","variance":1.0,)"
        R"("backlog_history":9,"unskilled_score":0.5,"placement":"lru"},)"
        R"("totals":{"requests":20,"responses":18,"retries":1,"502":2,"503":3,)"
        R"("client_errors":4,"truncated":5,"client_aborts":6,"retries_refused":7,)"
        R"("queries_of_death":8,"invalid_responses":11,"connections_accepted":9,)"
        R"("connections_open":10},)"
        R"("draining":true,"loop_lag_ms":{"last":0.5,"recent_max":12.25,"max":40.0},)"
        R"("response_buffers":{"memory":0,"disk":0},)"
        R"("version":"1.2.3","start_time":1700000000.0,"uptime":2.5,)"
        R"("requests_by_status":{"1xx":0,"2xx":15,"3xx":0,"4xx":3,"5xx":0},)"
        R"("latency_seconds":{"count":18,"sum":0.75},)"
        R"("bytes":{"request_body":100,"response_body":2000},)"
        R"("classes":[{"class":"shop.example","requests":12,"latency_sum":0.5,)"
        R"("workers":[["127.0.0.1:8001",2.5]]}],)"
        R"("other_classes":{"class":"other","requests":6,"latency_sum":0.25}})"
        "\n");
}

TEST_CASE("RenderLbStatusJson: the ZooKeeper part comes last", "[status]") {
  rlb::LbStatusSnapshot s;
  s.pool = {"classless", false, std::nullopt, 2.5, 7, 1.0, ""};
  s.zookeeper = rlb::LbStatusSnapshot::ZooKeeper{"connected", "127.0.0.1:2181", 2, "/lb",
                                                 std::nullopt, "zookeeper", "default",
                                                 "default", {}, {}, 0};
  std::string doc = rlb::RenderLbStatusJson(s);
  const std::string tail =
      R"("other_classes":{"class":"","requests":0,"latency_sum":0.0},)"
      R"("zookeeper":{"state":"connected","hosts":"127.0.0.1:2181","sessions":2,"path":"/lb",)"
      R"("workers_path":null,"worker_node_reads":0,"disabled":[]},)"
      R"("settings":{"backlog_history":{"value":7,"source":"default"},)"
      R"("unskilled_score":{"value":1.0,"source":"default"},)"
      R"("variance":{"value":2.5,"source":"zookeeper"}}})"
      "\n";
  REQUIRE(doc.size() > tail.size());
  CHECK(doc.substr(doc.size() - tail.size()) == tail);
  CHECK(doc.substr(0, 30) == R"({"backlog":0,"mean_backlog":nu)");
  s.zookeeper->workers_path = "/app/providers";
  s.zookeeper->worker_node_reads = 12;
  s.zookeeper->disabled = {"10.0.0.1:8001", "10.0.0.2:8001"};
  CHECK(rlb::RenderLbStatusJson(s).find(
            R"("workers_path":"/app/providers","worker_node_reads":12,)"
            R"("disabled":["10.0.0.1:8001","10.0.0.2:8001"]})") != std::string::npos);
}

TEST_CASE("RenderLbStatusJson: file descriptors once the LB has started", "[status]") {
  rlb::LbStatusSnapshot s;
  CHECK(rlb::RenderLbStatusJson(s).find("file_descriptors") == std::string::npos);
  s.file_descriptors = rlb::LbStatusSnapshot::FileDescriptors{
      .limit = 256, .base = 20, .client_reserve = 64, .link_capacity = 140,
      .links_open = 140, .workers_waiting = 60, .link_shortages = 75, .accept_pauses = 2};
  CHECK(rlb::RenderLbStatusJson(s).find(
            R"("response_buffers":{"memory":0,"disk":0},)"
            R"("file_descriptors":{"limit":256,"base":20,"client_reserve":64,)"
            R"("worker_capacity":140,"worker_connections":140,"workers_waiting":60,)"
            R"("worker_shortages":75,"accept_pauses":2},"version":)") != std::string::npos);
}

TEST_CASE("RenderLbStatusJson: rejected settings follow the settings", "[status]") {
  rlb::LbStatusSnapshot s;
  s.pool = {"resume", false, std::nullopt, 4.0, 6, 1.0, "lru"};
  s.zookeeper = rlb::LbStatusSnapshot::ZooKeeper{
      "connected", "127.0.0.1:2181", 1, "/lb", "/lb/workers/providers",
      "zookeeper", "zookeeper", "default",
      {{"variance", R"(pool setting variance="-1": must be > 0)"},
       {"backlog_history", R"(pool setting backlog_history="0": must be >= 1)"}},
      {},
      0};
  const std::string tail =
      R"("settings":{"backlog_history":{"value":6,"source":"zookeeper"},)"
      R"("unskilled_score":{"value":1.0,"source":"default"},)"
      R"("variance":{"value":4.0,"source":"zookeeper"},)"
      R"("rejected":{"backlog_history":"pool setting backlog_history=\"0\": must be >= 1",)"
      R"("variance":"pool setting variance=\"-1\": must be > 0"}}})"
      "\n";
  std::string doc = rlb::RenderLbStatusJson(s);
  REQUIRE(doc.size() > tail.size());
  CHECK(doc.substr(doc.size() - tail.size()) == tail);
  // Nothing rejected: no "rejected" key at all (the test above).
}

TEST_CASE("StatusServer serves a document larger than the socket buffer, then closes",
          "[status]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  const std::string path = rlb::DefaultTempDir() + "/rlb-status-test-" +
                           std::to_string(getpid()) + ".sock";
  std::string document(8 << 20, 'x');  // several uv_write rounds
  int served = 0;
  auto server = std::make_unique<rlb::StatusServer>(&loop, path, [&] {
    ++served;
    return document;
  });
  REQUIRE(server->Start().ok());
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  rlb::LoopMailbox mailbox(&loop);
  std::string got[2];
  rlb::Status read_status[2];
  std::thread client([&] {
    for (int i = 0; i < 2; ++i) {
      auto conn = rlb::ToolConnection::ConnectUnix(path, rlb::ToolConnection::DeadlineIn(20));
      read_status[i] = conn.ok() ? (*conn)->ReadToEnd(&got[i]) : conn.status();
    }
    mailbox.Post([&] {
      server->Close();
      mailbox.Close();
    });
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  client.join();
  for (int i = 0; i < 2; ++i) {
    INFO(i);
    CHECK(read_status[i].ok());
    CHECK(got[i] == document);
  }
  CHECK(served == 2);
  CHECK(access(path.c_str(), F_OK) != 0);  // Close() removed the socket file
  server.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  int open = 0;
  uv_walk(&loop, [](uv_handle_t*, void* n) { ++*static_cast<int*>(n); }, &open);
  CHECK(open == 0);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("StatusServer refuses a path that is not a socket", "[status]") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  const std::string path = rlb::DefaultTempDir() + "/rlb-status-test-" +
                           std::to_string(getpid()) + ".file";
  FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fclose(f);
  {
    rlb::StatusServer server(&loop, path, [] { return std::string("{}"); });
    rlb::Status s = server.Start();
    CHECK(s.IsInvalidArgument());
  }
  CHECK(access(path.c_str(), F_OK) == 0);  // left alone
  unlink(path.c_str());
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}
