// sagad as a real process on 127.0.0.1, driven over HTTP as a user drives it with curl.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "testutil/child_process.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

const std::string kSamples = std::string(SAGA_SOURCE_DIR) + "/samples";

// A saga that gets stuck at once: its compensation goes to a participant nobody runs.
constexpr const char* kJammed = R"(
saga Jammed version 1 {
  timeout 1s
  retry 2 backoff 10ms
  compensation retry 2 backoff 10ms
  step reserve { command inventory.ReserveItems  compensate warehouse.Unjam }
  step charge  { command payment.ChargeCard      compensate payment.RefundPayment }
}
)";

json order(const std::string& id, int amount) {
  return {{"order_id", id}, {"sku", "widget"}, {"qty", 1}, {"amount", amount}};
}

class Sagad : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);  // a server that refuses a body may close while we still write
    dir = testutil::temp_path("sagad");
    fs::remove_all(dir);
    fs::create_directories(dir + "/defs");
    fs::copy_file(kSamples + "/place_order.saga", dir + "/defs/place_order.saga");
    std::ofstream(dir + "/defs/jammed.saga") << kJammed;
    db = dir + "/log.db";
    log = dir + "/sagad.log";
  }

  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {SAGAD, "--definitions", dir + "/defs", "--db",
                                     db,    "--http",        "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    fs::remove(log);
    proc = std::make_unique<testutil::ChildProcess>(argv, log);
    auto line = testutil::wait_for_line(log, "listening=", std::chrono::seconds(20));
    ASSERT_TRUE(line.has_value()) << read_log();
    const std::string addr = line->substr(line->find('=') + 1);
    port = std::stoi(addr.substr(addr.rfind(':') + 1));
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_read_timeout(30);
  }

  // Stops sagad with `sig` and returns its exit code.
  int stop(int sig = SIGTERM) {
    proc->kill(sig);
    auto code = proc->wait(std::chrono::seconds(30));
    proc.reset();
    return code.value_or(-1);
  }

  std::string read_log() {
    std::ifstream in(log);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  httplib::Result post(const std::string& path, const json& body, const std::string& token = "") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return client->Post(path.c_str(), h, body.dump(), "application/json");
  }

  json start_saga(const std::string& type, const std::string& id, const json& data,
                  int* status = nullptr, const std::string& wait = "5s") {
    auto r = post("/sagas?wait=" + wait, {{"type", type}, {"id", id}, {"data", data}});
    EXPECT_TRUE(r) << "no answer";
    if (!r) return {};
    if (status) *status = r->status;
    return json::parse(r->body);
  }

  json get(const std::string& path) {
    auto r = client->Get(path.c_str());
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    return json::parse(r->body);
  }

  double metric(const std::string& line_prefix) {
    auto r = client->Get("/metrics");
    EXPECT_TRUE(r);
    std::istringstream in(r->body);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(line_prefix + " ", 0) == 0) return std::stod(line.substr(line_prefix.size()));
    return 0;
  }

  std::string dir, db, log;
  std::unique_ptr<testutil::ChildProcess> proc;
  std::unique_ptr<httplib::Client> client;
  int port = 0;
};

TEST_F(Sagad, StartsSagasOverHttpAndAnswersWithTheirOutcome) {
  start();
  int code = 0;
  json ok = start_saga("PlaceOrder", "o-1", order("o-1", 100), &code);
  EXPECT_EQ(code, 200);
  EXPECT_EQ(ok["status"], "completed");
  EXPECT_EQ(ok["context"]["payment_id"], "pay-o-1");
  json declined = start_saga("PlaceOrder", "o-2", order("o-2", 900), &code);
  EXPECT_EQ(code, 200);
  EXPECT_EQ(declined["status"], "compensated");
  EXPECT_THAT(declined["reason"].get<std::string>(), HasSubstr("card declined"));

  // Idempotent on the id: the same start answers the same outcome; another input is a conflict.
  EXPECT_EQ(start_saga("PlaceOrder", "o-1", order("o-1", 100), &code)["status"], "completed");
  EXPECT_EQ(code, 200);
  json other = start_saga("PlaceOrder", "o-1", order("o-1", 101), &code);
  EXPECT_EQ(code, 409);
  EXPECT_THAT(other["error"].get<std::string>(), HasSubstr("another input"));

  // Without ?wait: 202 and where to look.
  auto r = post("/sagas", {{"type", "PlaceOrder"}, {"id", "o-3"}, {"data", order("o-3", 10)}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202);
  EXPECT_EQ(r->get_header_value("Location"), "/sagas/o-3");

  json saga = get("/sagas/o-2");
  EXPECT_EQ(saga["status"], "compensated");
  bool released = false;
  for (const auto& e : saga["events"])
    released = released || e.value("command", "") == "inventory.ReleaseReservation";
  EXPECT_TRUE(released) << saga.dump();
  json defs = get("/definitions");
  EXPECT_EQ(defs.size(), 2u);  // PlaceOrder v1, Jammed v1
}

TEST_F(Sagad, ListsSagasByStatusInPagesThatFollowACursor) {
  start();
  for (int i = 0; i < 5; ++i) {
    const std::string id = "p-" + std::to_string(i);
    start_saga("PlaceOrder", id, order(id, i == 2 ? 900 : 10));
  }
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    json page = get("/sagas?limit=2" + (cursor.empty() ? "" : "&cursor=" + cursor));
    for (const auto& s : page["sagas"]) EXPECT_TRUE(seen.insert(s["id"]).second);
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(seen.size(), 5u);
  EXPECT_EQ(get("/sagas?status=compensated")["sagas"].size(), 1u);
  EXPECT_EQ(get("/sagas?type=PlaceOrder")["sagas"].size(), 5u);
  EXPECT_EQ(get("/sagas?type=Jammed")["sagas"].size(), 0u);
  for (const char* query :
       {"/sagas?status=sleeping", "/sagas?limit=1001", "/sagas?limit=0", "/sagas?cursor=zz",
        "/sagas?cursor=" /* hex of "x" */ "78"}) {
    auto bad = client->Get(query);
    ASSERT_TRUE(bad) << query;
    EXPECT_EQ(bad->status, 400) << query;
    EXPECT_EQ(json::parse(bad->body).count("error"), 1u) << query;
  }
}

// README: ?wait answers with the outcome when the saga ends within it, else 202 and where to look.
TEST_F(Sagad, AWaitThatRunsOutIsAnswered202WithTheSagasLocation) {
  start({"--participants", "none"});  // nobody answers: the saga cannot end in time
  auto r = post("/sagas?wait=300ms",
                {{"type", "PlaceOrder"}, {"id", "w-1"}, {"data", order("w-1", 10)}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(r->get_header_value("Location"), "/sagas/w-1");
  EXPECT_EQ(json::parse(r->body)["status"], "running");
  EXPECT_EQ(get("/sagas/w-1")["status"], "running");
  EXPECT_EQ(metric("saga_active"), 1);
  EXPECT_EQ(metric("saga_outbox_backlog"), 1);  // its command, sent again until someone takes it
  // A retry of a saga that is not stuck is a conflict, not a second run.
  auto retry = post("/sagas/w-1/retry", json::object());
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 409) << retry->body;
}

TEST_F(Sagad, StuckSagaIsRetriedThenAbortedOverHttp) {
  start();
  int code = 0;
  json stuck = start_saga("Jammed", "j-1", order("j-1", 900), &code);
  EXPECT_EQ(code, 200);
  ASSERT_EQ(stuck["status"], "stuck") << stuck.dump();
  EXPECT_GE(metric(R"(saga_finished_total{status="stuck",type="Jammed"})"), 1);

  auto retry = post("/sagas/j-1/retry", {{"reason", "warehouse back"}});
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 200) << retry->body;
  // Nobody runs the warehouse: the retried compensation fails again and the saga is stuck again.
  json after;
  for (int i = 0; i < 100; ++i) {
    after = get("/sagas/j-1");
    int retries = 0;
    for (const auto& e : after["events"])
      retries += e["type"] == "OperatorIntervened" && e.value("detail", "") == "retry";
    if (retries == 1 && after["status"] == "stuck") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(after["status"], "stuck") << after.dump();

  auto no_reason = post("/sagas/j-1/abort", json::object());
  ASSERT_TRUE(no_reason);
  EXPECT_EQ(no_reason->status, 400);
  auto abort = post("/sagas/j-1/abort", {{"reason", "released by hand"}});
  ASSERT_TRUE(abort);
  EXPECT_EQ(abort->status, 200) << abort->body;
  json aborted = get("/sagas/j-1");
  EXPECT_EQ(aborted["status"], "aborted");
  EXPECT_EQ(aborted["reason"], "aborted by operator: released by hand");  // kept in its log
  EXPECT_EQ(metric(R"(saga_finished_total{status="aborted",type="Jammed"})"), 1);
  auto again = post("/sagas/j-1/abort", {{"reason", "twice"}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409) << again->body;  // not stuck any more
  auto unknown = post("/sagas/nobody/retry", json::object());
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
}

TEST_F(Sagad, MetricsMoveWithSagasAndRequests) {
  start();
  const std::string completed = R"(saga_finished_total{status="completed",type="PlaceOrder"})";
  EXPECT_EQ(metric(completed), 0);
  start_saga("PlaceOrder", "m-1", order("m-1", 10));
  start_saga("PlaceOrder", "m-2", order("m-2", 10));
  start_saga("PlaceOrder", "m-2", order("m-2", 10));  // the same start again: not a new saga
  EXPECT_EQ(metric(completed), 2);
  EXPECT_EQ(start_saga("PlaceOrder", "m-3", order("m-3", 900))["status"], "compensated");
  EXPECT_EQ(metric(R"(saga_finished_total{status="compensated",type="PlaceOrder"})"), 1);
  EXPECT_EQ(metric(R"(saga_started_total{type="PlaceOrder"})"), 3);
  EXPECT_GE(metric("saga_commits_total"), 2);
  EXPECT_GE(metric("saga_commit_batch_decisions_count"), 2);
  EXPECT_GE(metric("saga_commit_batch_decisions_sum"), metric("saga_commit_batch_decisions_count"));
  EXPECT_GE(
      metric(
          R"(saga_step_seconds_count{compensation="false",outcome="ok",step="charge_payment",type="PlaceOrder"})"),
      2);
  EXPECT_GE(metric("saga_commit_seconds_count"), 2);
  EXPECT_EQ(metric(R"(sagad_http_requests_total{code="200",route="/sagas"})"), 4);
  EXPECT_GE(metric(R"(sagad_http_requests_total{code="200",route="/metrics"})"), 4);
}

// The same failure for many sagas is one warning naming the first, and then a count: here a
// compensation whose participant nobody runs, for five sagas.
TEST_F(Sagad, TheSameFailureForManySagasIsLoggedOnceWithACount) {
  start({"--log-format", "json"});
  for (int i = 0; i < 5; ++i) {
    const std::string id = "jam-" + std::to_string(i);
    EXPECT_EQ(start_saga("Jammed", id, order(id, 900))["status"], "stuck");
  }
  EXPECT_EQ(stop(), 0);
  int first = 0, counted = 0;
  std::istringstream in(read_log());
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    json j = json::parse(line);
    if (j.value("msg", "").find("send failed") != 0) continue;
    EXPECT_EQ(j.value("level", ""), "warning") << line;
    EXPECT_THAT(j.value("msg", ""), HasSubstr("no subscriber for channel 'warehouse'")) << line;
    if (j.contains("repeats")) {
      // Two attempts at each compensation: ten failed sends, one logged. The count is about
      // all of them: it names no saga.
      EXPECT_EQ(j["repeats"], 9) << line;
      EXPECT_FALSE(j.contains("saga_id")) << line;
      ++counted;
    } else {
      EXPECT_THAT(j.value("saga_id", ""), HasSubstr("jam-")) << line;  // the first one's
      ++first;
    }
  }
  EXPECT_EQ(first, 1) << read_log();
  EXPECT_EQ(counted, 1) << read_log();
}

// JSON logs carry what a line is about as fields: saga, command and trace ids.
TEST_F(Sagad, JsonLogsNameTheSagaCommandAndTrace) {
  start({"--log-format", "json"});
  const std::string trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  httplib::Headers h{{"traceparent", trace}};
  // Declined, and its compensation goes to a participant nobody runs: it cannot be sent.
  auto r = client->Post("/sagas?wait=10s", h,
                        json{{"type", "Jammed"}, {"id", "t-1"}, {"data", order("t-1", 900)}}.dump(),
                        "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["status"], "stuck") << r->body;
  bool ended = false, send_failed = false;
  std::istringstream in(read_log());
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') continue;
    json j = json::parse(line);
    if (j.value("msg", "") == "saga ended" && j.value("saga_id", "") == "t-1") {
      EXPECT_EQ(j.value("trace_id", ""), "0af7651916cd43dd8448eb211c80319c") << line;
      ended = true;
    }
    if (j.value("msg", "").find("send failed") == 0) {
      EXPECT_EQ(j.value("saga_id", ""), "t-1") << line;
      EXPECT_THAT(j.value("command_id", ""), HasSubstr("t-1/reserve/c")) << line;
      EXPECT_EQ(j.value("trace_id", ""), "0af7651916cd43dd8448eb211c80319c") << line;
      send_failed = true;
    }
  }
  EXPECT_TRUE(ended) << read_log();
  EXPECT_TRUE(send_failed) << read_log();
#ifdef SAGACTL
  // The saga's log keeps its trace: sagactl show prints it under the header.
  auto shown = testutil::run_command(std::string(SAGACTL) + " show t-1 --db " + db);
  EXPECT_THAT(shown.out, HasSubstr("  trace " + trace + "\n"));
  EXPECT_THAT(shown.out, HasSubstr("could not be sent"));
#endif
}

TEST_F(Sagad, MutatingEndpointsNeedTheBearerTokenWhichIsNeverPrinted) {
  const std::string token = "s3cret-token-value";
  std::ofstream(dir + "/token") << token << "\n";
  start({"--token-file", dir + "/token"});
  auto none = post("/sagas", {{"type", "PlaceOrder"}, {"id", "t-1"}, {"data", order("t-1", 1)}});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->body, HasSubstr("Bearer"));
  auto wrong =
      post("/sagas", {{"type", "PlaceOrder"}, {"id", "t-1"}, {"data", order("t-1", 1)}}, "s3cret");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto right =
      post("/sagas", {{"type", "PlaceOrder"}, {"id", "t-1"}, {"data", order("t-1", 1)}}, token);
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 202);
  auto retry = post("/sagas/t-1/retry", json::object());
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->status, 401);
  EXPECT_EQ(client->Get("/sagas/t-1")->status, 200);  // reading needs no token
  // The token is checked before a body is read: a large body without it gets 401, not 413.
  auto big = client->Post("/sagas", std::string(3 << 20, ' '), "application/json");
  if (big) {
    EXPECT_EQ(big->status, 401);  // or the connection was cut while we wrote
  }
  // Nobody else can listen on its port beside it (no SO_REUSEPORT).
  auto twin = testutil::run_command(std::string(SAGAD) + " --definitions " + dir + "/defs --db " +
                                    dir + "/twin.db --http 127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(twin.exit_code, 1);
  EXPECT_THAT(twin.err, HasSubstr("cannot listen"));
  EXPECT_EQ(stop(), 0);
  EXPECT_THAT(read_log(), ::testing::Not(HasSubstr(token)));
  auto help = testutil::run_command(std::string(SAGAD) + " --help");
  EXPECT_THAT(help.out, ::testing::Not(HasSubstr(token)));
}

// Sends `text` on a fresh connection and returns all that comes back before the close.
static std::string raw_exchange(int port, const std::string& text) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(static_cast<uint16_t>(port));
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0 &&
      ::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size())) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, n);
  }
  ::close(fd);
  return got;
}

TEST_F(Sagad, MalformedOversizedAndUnknownStartsAreRefusedAndItKeepsServing) {
  start();
  auto raw = [&](const std::string& body) {
    auto r = client->Post("/sagas", body, "application/json");
    EXPECT_TRUE(r);
    return r ? std::make_pair(r->status, r->body) : std::make_pair(0, std::string());
  };
  auto [c1, b1] = raw("not json");
  EXPECT_EQ(c1, 400);
  EXPECT_THAT(b1, HasSubstr("not a JSON object"));
  auto [c2, b2] = raw(std::string(100'000, '[') + std::string(100'000, ']'));
  EXPECT_EQ(c2, 400);
  EXPECT_THAT(b2, HasSubstr("nested deeper"));
  auto [c3, b3] =
      raw(json{{"type", "PlaceOrder"}, {"data", {{"x", std::string(2 << 20, 'a')}}}}.dump());
  EXPECT_EQ(c3, 413);
  EXPECT_THAT(b3, HasSubstr("error"));
  auto [c4, b4] = raw(json{{"type", "NoSuchSaga"}, {"id", "u-1"}}.dump());
  EXPECT_EQ(c4, 400);
  EXPECT_THAT(b4, HasSubstr("unknown saga type"));
  auto [c5, b5] = raw(json{{"id", "u-2"}}.dump());
  EXPECT_EQ(c5, 400);
  EXPECT_THAT(b5, HasSubstr("'type'"));
  auto bad_wait =
      client->Post("/sagas?wait=forever", json{{"type", "PlaceOrder"}}.dump(), "application/json");
  ASSERT_TRUE(bad_wait);
  EXPECT_EQ(bad_wait->status, 400);
  httplib::Headers bad_trace{{"traceparent", "01-zz"}};
  auto trace = client->Post("/sagas", bad_trace, json{{"type", "PlaceOrder"}, {"id", "u-3"}}.dump(),
                            "application/json");
  ASSERT_TRUE(trace);
  EXPECT_EQ(trace->status, 400) << trace->body;
  auto [c6, b6] = raw(json{{"type", "PlaceOrder"}, {"id", ""}}.dump());
  EXPECT_EQ(c6, 400);
  EXPECT_THAT(b6, HasSubstr("non-empty"));
  // A body without a declared length (chunked) could grow past any limit: refused unread.
  auto chunked = client->Post(
      "/sagas",
      [](size_t offset, httplib::DataSink& sink) {
        if (offset < (4 << 20)) {
          const std::string chunk(64 << 10, ' ');
          sink.write(chunk.data(), chunk.size());
        } else {
          sink.done();
        }
        return true;
      },
      "application/json");
  if (chunked) {  // else the connection was cut while we wrote
    EXPECT_EQ(chunked->status, 411);
  }
  httplib::Headers gz{{"Content-Encoding", "gzip"}};
  auto encoded = client->Post("/sagas", gz, std::string("\x1f\x8b", 2), "application/json");
  ASSERT_TRUE(encoded);
  EXPECT_EQ(encoded->status, 415);
  auto route = client->Get("/nowhere");
  ASSERT_TRUE(route);
  EXPECT_EQ(route->status, 404);
  EXPECT_EQ(json::parse(route->body).count("error"), 1u);
  httplib::Headers huge{{"X-Filler", std::string(20'000, 'a')}};
  auto big_header = client->Get("/healthz", huge);
  ASSERT_TRUE(big_header);
  EXPECT_EQ(big_header->status, 431);
  EXPECT_THAT(big_header->body, HasSubstr("headers larger than"));
  // Not HTTP at all: a JSON error, then the connection closes.
  const std::string garbage = raw_exchange(port, "HELLO THERE\r\n\r\n");
  EXPECT_THAT(garbage, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(garbage, HasSubstr("malformed HTTP request"));
  // A '%' that is no escape stays a '%' (ids may hold one).
  auto bad_escape = client->Get("/sagas/%zz");
  ASSERT_TRUE(bad_escape);
  EXPECT_EQ(bad_escape->status, 404);
  EXPECT_THAT(bad_escape->body, HasSubstr("no saga '%zz'"));
  // HEAD: the headers of the GET, no body, and the connection goes on.
  auto head = client->Head("/healthz");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  EXPECT_EQ(client->Get("/healthz")->status, 200);
  auto odd_method = raw_exchange(port, "BREW /sagas HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(odd_method, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(odd_method, HasSubstr("unsupported method BREW"));
  // Still serving, and nothing was started by the refused requests.
  EXPECT_EQ(start_saga("PlaceOrder", "after", order("after", 10))["status"], "completed");
  EXPECT_EQ(get("/sagas")["sagas"].size(), 1u);
  // An id with characters a path escapes: the Location given can be followed.
  auto odd_id =
      post("/sagas", {{"type", "PlaceOrder"}, {"id", "50% off/x?"}, {"data", order("o", 10)}});
  ASSERT_TRUE(odd_id);
  ASSERT_EQ(odd_id->status, 202) << odd_id->body;
  // (cpp-httplib decodes a Location header it reads; the body's copy is as sent.)
  const std::string location = json::parse(odd_id->body)["location"];
  EXPECT_EQ(location, "/sagas/50%25%20off%2Fx%3F");
  auto followed = client->Get(location);
  ASSERT_TRUE(followed);
  EXPECT_EQ(followed->status, 200);
  EXPECT_EQ(json::parse(followed->body)["id"], "50% off/x?");
}

TEST_F(Sagad, SigtermMidRunStopsCleanlyAndARestartFinishesEverySaga) {
  start({"--participants", "none"});  // nobody answers: every saga is under way at the stop
  const int n = 200;
  for (int i = 0; i < n; ++i) {
    const std::string id = "s-" + std::to_string(i);
    auto r = post("/sagas", {{"type", "PlaceOrder"}, {"id", id}, {"data", order(id, 10)}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
  }
  EXPECT_EQ(get("/sagas?status=running&limit=1000")["sagas"].size(), static_cast<size_t>(n));
  EXPECT_EQ(stop(SIGTERM), 0) << read_log();
  EXPECT_THAT(read_log(), HasSubstr("sagad stopped"));
  start();
  json all;
  for (int i = 0; i < 200; ++i) {
    all = get("/sagas?status=completed&limit=1000");
    if (all["sagas"].size() == static_cast<size_t>(n)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(all["sagas"].size(), static_cast<size_t>(n));
  EXPECT_EQ(stop(SIGTERM), 0);
}

// From now on every commit of sagad's log fails (a trigger refuses events), and a saga waits
// on one: its start request is left waiting.
void refuse_commits(const std::string& db, int port, const json& start) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  sqlite3_busy_timeout(raw, 10'000);
  EXPECT_EQ(sqlite3_exec(raw,
                         "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN "
                         "SELECT RAISE(ABORT, 'the test refuses every event'); END",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(raw);
  sqlite3_close(raw);
  httplib::Client quick("127.0.0.1", port);
  quick.set_read_timeout(1);
  (void)quick.Post("/sagas", start.dump(), "application/json");
}

// README: exit 0 is a clean stop. A stop whose last commit fails is not one. Meanwhile sagad
// says why it is not ready, and counts the failures.
TEST_F(Sagad, AStopWhoseLastCommitFailsExitsOne) {
  start();
  refuse_commits(db, port, {{"type", "PlaceOrder"}, {"id", "x"}, {"data", order("x", 10)}});
  auto ready = client->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(json::parse(ready->body).value("why", ""), "the saga log cannot be written");
  EXPECT_GE(metric("saga_commit_failures_total"), 1);
  EXPECT_EQ(metric("saga_partitions_failing"), 1);
  EXPECT_EQ(stop(SIGTERM), 1) << read_log();
  EXPECT_THAT(read_log(), HasSubstr("the test refuses every event"));
}

// README: a second signal exits at once, without waiting for the stop to give up.
TEST_F(Sagad, ASecondSignalExitsAtOnce) {
  start();
  refuse_commits(db, port, {{"type", "PlaceOrder"}, {"id", "x"}, {"data", order("x", 10)}});
  proc->kill(SIGTERM);  // the stop retries the failing commit ten times, 200 ms apart
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto t0 = std::chrono::steady_clock::now();
  proc->kill(SIGINT);
  EXPECT_EQ(proc->wait(std::chrono::seconds(30)).value_or(-1), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
  proc.reset();
}

TEST_F(Sagad, SighupAddsDefinitionsAndRefusesAChangedVersion) {
  start();
  EXPECT_EQ(start_saga("PlaceOrder", "h-1", order("h-1", 10))["status"], "completed");
  // A saga under way across the reload: its compensation waits on a participant nobody runs.
  auto running =
      post("/sagas", {{"type", "Jammed"}, {"id", "h-run"}, {"data", order("h-run", 900)}});
  ASSERT_TRUE(running);
  ASSERT_EQ(running->status, 202);
  for (int i = 0; i < 100 && get("/sagas/h-run")["status"] != "compensating"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(get("/sagas/h-run")["status"], "compensating");
  std::ofstream(dir + "/defs/jammed2.saga")
      << "saga Jammed version 2 { step only { command orders.ConfirmOrder } }\n";
  proc->kill(SIGHUP);
  json defs;
  for (int i = 0; i < 100 && defs.size() != 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto r = client->Get("/definitions");
    if (r && r->status == 200) defs = json::parse(r->body);
  }
  ASSERT_EQ(defs.size(), 3u) << read_log();
  EXPECT_EQ(start_saga("Jammed", "h-2", order("h-2", 10))["status"], "completed");  // v2
  // The same name and version with other steps: refused, the running definitions stay.
  std::ofstream(dir + "/defs/jammed2.saga")
      << "saga Jammed version 2 { step other { command orders.ConfirmOrder } }\n";
  proc->kill(SIGHUP);
  ASSERT_TRUE(testutil::wait_for_line(log, "", std::chrono::seconds(1)));
  for (int i = 0; i < 100 && read_log().find("reload refused") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_THAT(read_log(), HasSubstr("a changed definition needs a new version"));
  EXPECT_EQ(get("/definitions").size(), 3u);
  EXPECT_EQ(start_saga("PlaceOrder", "h-3", order("h-3", 10))["status"], "completed");
  // The saga from before the reloads went on under v1 and its retries ran out: stuck.
  json after;
  for (int i = 0; i < 200 && (after = get("/sagas/h-run"))["status"] != "stuck"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(after["status"], "stuck") << after.dump();
  EXPECT_EQ(after["version"], 1);
  int unjams = 0;
  for (const auto& e : after["events"])
    unjams +=
        e.value("type", "") == "CompensationFailed" && e.value("command", "") == "warehouse.Unjam";
  EXPECT_GE(unjams, 1) << after.dump();
}

TEST_F(Sagad, CreatesItsLogOwnerOnlyAndReportsReadiness) {
  start();
  struct stat st {};
  ASSERT_EQ(stat(db.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(get("/healthz")["status"], "ok");
  EXPECT_EQ(get("/readyz")["status"], "ready");
}

// Without --http it serves 127.0.0.1:8080 only; SAGAD_TOKEN guards the POST endpoints when no
// token file is given.
TEST_F(Sagad, ListensOnLoopbackByDefaultAndTakesItsTokenFromTheEnvironment) {
  ::setenv("SAGAD_TOKEN", "env-token-value", 1);
  proc = std::make_unique<testutil::ChildProcess>(
      std::vector<std::string>{SAGAD, "--definitions", dir + "/defs", "--db", db}, log);
  ::unsetenv("SAGAD_TOKEN");
  auto line = testutil::wait_for_line(log, "listening=", std::chrono::seconds(20));
  if (!line) {
    const std::string text = read_log();
    if (text.find("cannot listen") != std::string::npos)
      GTEST_SKIP() << "port 8080 is taken on this machine: " << text;
    FAIL() << text;
  }
  EXPECT_EQ(*line, "listening=127.0.0.1:8080");
  client = std::make_unique<httplib::Client>("127.0.0.1", 8080);
  const json body = {{"type", "PlaceOrder"}, {"id", "e-1"}, {"data", order("e-1", 1)}};
  auto none = post("/sagas", body);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto right = post("/sagas?wait=5s", body, "env-token-value");
  ASSERT_TRUE(right);
  EXPECT_EQ(right->status, 200) << right->body;
  EXPECT_EQ(stop(), 0);
  EXPECT_THAT(read_log(), ::testing::Not(HasSubstr("env-token-value")));
}

TEST_F(Sagad, RunsSagasOnSeveralPartitionsAndRecoversThemAll) {
  start({"--partitions", "3"});
  for (int i = 0; i < 9; ++i) {
    const std::string id = "p-" + std::to_string(i);
    EXPECT_EQ(start_saga("PlaceOrder", id, order(id, 10))["status"], "completed") << id;
  }
  EXPECT_EQ(stop(), 0);
  EXPECT_THAT(read_log(), HasSubstr("partitions=3"));
  start({"--partitions", "3"});
  for (int i = 0; i < 9; ++i)
    EXPECT_EQ(get("/sagas/p-" + std::to_string(i))["status"], "completed");
  EXPECT_EQ(get("/sagas?limit=100")["sagas"].size(), 9u);
}

TEST_F(Sagad, LogLevelChoosesWhatIsLogged) {
  start({"--log-level", "debug"});
  auto accepted =
      post("/sagas", {{"type", "PlaceOrder"}, {"id", "l-1"}, {"data", order("l-1", 10)}});
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->status, 202);
  EXPECT_EQ(start_saga("PlaceOrder", "l-1b", order("l-1b", 10))["status"], "completed");
  EXPECT_EQ(stop(), 0);
  EXPECT_THAT(read_log(), HasSubstr("saga accepted"));  // a debug line
  EXPECT_THAT(read_log(), HasSubstr("saga ended"));
  start({"--log-level", "warn"});
  start_saga("PlaceOrder", "l-2", order("l-2", 10));
  EXPECT_EQ(stop(), 0);
  EXPECT_THAT(read_log(), ::testing::Not(HasSubstr("saga ended")));  // info lines are left out
  EXPECT_THAT(read_log(), ::testing::Not(HasSubstr("sagad started")));
}

TEST_F(Sagad, RunsWithTheShippedExampleConfigAndFlagsOverrideIt) {
  start({"--config", std::string(SAGA_SOURCE_DIR) + "/apps/sagad/sagad.example.toml"});
  EXPECT_EQ(start_saga("PlaceOrder", "c-1", order("c-1", 10))["status"], "completed");
  EXPECT_TRUE(fs::exists(db));  // --db overrode the file's /var/lib path
}

#ifdef SAGACTL
TEST_F(Sagad, SagactlShowsRetriesAndAbortsAStuckSagaThroughTheServer) {
  std::ofstream(dir + "/token") << "tok-123\n";
  start({"--token-file", dir + "/token"});
  httplib::Headers auth{{"Authorization", "Bearer tok-123"}};
  auto r = client->Post("/sagas?wait=5s", auth,
                        json{{"type", "Jammed"}, {"id", "j/2"}, {"data", order("j/2", 900)}}.dump(),
                        "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(json::parse(r->body)["status"], "stuck") << r->body;
  const std::string ctl = std::string(SAGACTL);
  const std::string server = " --server http://127.0.0.1:" + std::to_string(port);
  // Read-only from the database while sagad writes it: what it waits for.
  auto show = testutil::run_command(ctl + " show j/2 --db " + db);
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("now: stuck"));
  EXPECT_THAT(show.out, HasSubstr("could not be sent"));
  auto denied = testutil::run_command(ctl + " retry j/2" + server);
  EXPECT_EQ(denied.exit_code, 1);
  EXPECT_THAT(denied.err, HasSubstr("HTTP 401"));
  auto retried = testutil::run_command(ctl + " retry j/2 --reason 'warehouse back'" + server +
                                       " --token-file " + dir + "/token");
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  EXPECT_THAT(retried.out, HasSubstr("j/2: retry accepted"));
  json after;
  for (int i = 0; i < 100; ++i) {  // the warehouse is still away: stuck again
    after = get("/sagas/j%2F2");
    if (after["status"] == "stuck" && after["events"].size() > 12) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(after["status"], "stuck");
  auto aborted = testutil::run_command("SAGAD_TOKEN=tok-123 " + ctl +
                                       " abort j/2 --reason 'released by hand'" + server);
  EXPECT_EQ(aborted.exit_code, 0) << aborted.err;
  EXPECT_EQ(get("/sagas/j%2F2")["status"], "aborted");
  auto replay = testutil::run_command(ctl + " replay --check j/2 --db " + db);
  EXPECT_EQ(replay.exit_code, 0) << replay.err;  // operator actions replay deterministically
}

// The README's walkthrough with the samples' definitions and participants: a ShipOrder refused
// by the courier is compensated (items back on the shelf); one whose tracking is refused after
// the pivot is stuck until the operator fixes the participant's data and retries it.
TEST_F(Sagad, ReadmeWalkthroughCompensatedAndStuckShipOrderRetriedAfterTheFix) {
  std::vector<std::string> argv = {SAGAD, "--definitions", kSamples,     "--db",
                                   db,    "--http",        "127.0.0.1:0"};
  proc = std::make_unique<testutil::ChildProcess>(argv, log);
  auto line = testutil::wait_for_line(log, "listening=", std::chrono::seconds(20));
  ASSERT_TRUE(line.has_value()) << read_log();
  port = std::stoi(line->substr(line->rfind(':') + 1));
  client = std::make_unique<httplib::Client>("127.0.0.1", port);
  // The README's first sagad block: a completed and a declined order, the list, the metrics.
  json completed = start_saga("PlaceOrder", "order-1", order("order-1", 40));
  EXPECT_EQ(completed["status"], "completed");
  EXPECT_EQ(completed["context"]["payment_id"], "pay-order-1");
  json declined = start_saga("PlaceOrder", "order-2", order("order-2", 900));
  EXPECT_EQ(declined["status"], "compensated");
  EXPECT_EQ(declined["reason"],
            "step 'charge_payment' failed: card declined: 900 exceeds the limit of 500");
  EXPECT_EQ(get("/sagas?status=compensated")["sagas"][0]["id"], "order-2");
  EXPECT_EQ(metric(R"(saga_finished_total{status="compensated",type="PlaceOrder"})"), 1);
  EXPECT_EQ(metric(R"(saga_finished_total{status="completed",type="PlaceOrder"})"), 1);
  auto shown = testutil::run_command(std::string(SAGACTL) + " show order-2 --db " + db);
  EXPECT_THAT(shown.out, HasSubstr("<- rejected in "));
  EXPECT_THAT(shown.out, HasSubstr("<< compensate: inventory.ReleaseReservation attempt 1"));
  EXPECT_THAT(shown.out, HasSubstr("== COMPENSATED: step 'charge_payment' failed"));

  auto ship = [](const std::string& id, const std::string& region) {
    return json{{"order_id", id}, {"sku", "widget"}, {"qty", 1}, {"region", region}};
  };
  EXPECT_EQ(start_saga("ShipOrder", "ship-1", ship("ship-1", "south"))["context"]["tracking_id"],
            "SP-ship-1");
  json refused = start_saga("ShipOrder", "ship-2", ship("ship-2", "moon"));
  EXPECT_EQ(refused["status"], "compensated");
  EXPECT_THAT(refused["reason"].get<std::string>(), HasSubstr("no courier serves region 'moon'"));
  json stuck = start_saga("ShipOrder", "ship-3", ship("ship-3", "north"));
  ASSERT_EQ(stuck["status"], "stuck");
  EXPECT_THAT(stuck["reason"].get<std::string>(), HasSubstr("has no tracking service set up"));

  const std::string ctl = std::string(SAGACTL);
  auto graph = testutil::run_command(ctl + " show ship-2 --graph --db " + db);
  EXPECT_THAT(graph.out, HasSubstr("<- pick_items       inventory.ReturnItems  compensated"));
  EXPECT_THAT(graph.out, HasSubstr("orders.HandToCourier   rejected: no courier serves region"));
  auto show = testutil::run_command(ctl + " show ship-3 --db " + db);
  EXPECT_THAT(show.out, HasSubstr("<- rejected in "));
  EXPECT_THAT(show.out, HasSubstr("now: stuck"));
  // The fix is in the participant's own data; then the operator retries through sagad.
  const std::string parts = db + ".participants";
  auto fix = testutil::run_command("sqlite3 " + parts +
                                   "/orders.db \"UPDATE couriers SET tracking = 'NP' WHERE "
                                   "region = 'north'\"");
  ASSERT_EQ(fix.exit_code, 0) << fix.err;
  auto retried = testutil::run_command(ctl + " retry ship-3 --reason 'north tracking set up'" +
                                       " --server http://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(retried.exit_code, 0) << retried.err;
  json after;
  for (int i = 0; i < 100; ++i) {
    after = get("/sagas/ship-3");
    if (after["status"] == "completed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(after["status"], "completed");
  EXPECT_EQ(testutil::run_command(ctl + " replay --check --all --db " + db).exit_code, 0);
  // Each participant's own ledger: the refused parcel's items are back, the others left.
  EXPECT_EQ(testutil::run_command("sqlite3 " + parts +
                                  "/inventory.db \"SELECT id, status FROM picks ORDER BY id\"")
                .out,
            "ship-1|picked\nship-2|returned\nship-3|picked\n");
  EXPECT_EQ(testutil::run_command("sqlite3 " + parts +
                                  "/orders.db \"SELECT order_id, tracking_id FROM parcels ORDER "
                                  "BY order_id\"")
                .out,
            "ship-1|SP-ship-1\nship-3|NP-ship-3\n");
}
#endif

#ifdef SAGA_BENCH
TEST_F(Sagad, SagaBenchDrivesItOverHttpWithTheReferenceWorkloadAndVerifies) {
  start({"--participants", "workload"});
  auto r = testutil::run_command(std::string(SAGA_BENCH) + " --mode http --sagas 300 --url " +
                                 "http://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(j["mode"], "http");
  EXPECT_EQ(j["completed"], 270);
  EXPECT_EQ(j["compensated"], 30);
  EXPECT_EQ(j["verified"], true);
  auto no_url = testutil::run_command(std::string(SAGA_BENCH) + " --mode http");
  EXPECT_EQ(no_url.exit_code, 2);
  EXPECT_THAT(no_url.err, HasSubstr("--url"));
}
#endif

TEST_F(Sagad, BadFlagsConfigAndDefinitionsAreClearErrors) {
  auto run = [&](const std::string& args) {
    return testutil::run_command(std::string(SAGAD) + " " + args + " --http 127.0.0.1:0");
  };
  auto partitions = run("--definitions " + dir + "/defs --db " + db + " --partitions 0");
  EXPECT_EQ(partitions.exit_code, 2);
  EXPECT_THAT(partitions.err, HasSubstr("--partitions"));
  fs::create_directories(dir + "/empty");
  auto empty = run("--definitions " + dir + "/empty --db " + db);
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_THAT(empty.err, HasSubstr("no .saga file"));
  std::ofstream(dir + "/comments.saga") << "# only a comment, no saga\n";
  auto no_saga = run("--definitions " + dir + "/comments.saga --db " + db);
  EXPECT_EQ(no_saga.exit_code, 1);
  EXPECT_THAT(no_saga.err, HasSubstr("comments.saga: no saga in it"));
  std::ofstream(dir + "/bad.toml") << "db = \"x.db\"\nlisten = 3\n";
  auto config = run("--config " + dir + "/bad.toml --definitions " + dir + "/defs");
  EXPECT_EQ(config.exit_code, 2);
  EXPECT_THAT(config.err, HasSubstr("unknown key 'listen'"));
  std::ofstream(dir + "/broken.saga") << "saga Broken { step a { command x } }\n";
  auto broken = run("--definitions " + dir + "/broken.saga --db " + db);
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_THAT(broken.err, HasSubstr("broken.saga:1:"));
  // A request topic that is a participant's would swallow its commands.
  std::ofstream(dir + "/topics.toml") << "[topics]\nrequests = \"inventory.commands\"\n";
  auto topic = run("--config " + dir + "/topics.toml --definitions " + dir +
                   "/defs --transport kafka --bootstrap 127.0.0.1:1");
  EXPECT_EQ(topic.exit_code, 2);
  EXPECT_THAT(topic.err, HasSubstr("'inventory.commands' is a participant's"));
  auto no_broker = run("--definitions " + dir + "/defs --transport kafka");
  EXPECT_EQ(no_broker.exit_code, 2);
  EXPECT_THAT(no_broker.err, HasSubstr("--bootstrap"));
}

}  // namespace
}  // namespace saga
