// sagad over Kafka as real processes: saga-mock-broker, inventory-service, payment-service and
// sagad, with kcat (as a service in another language would) producing start requests and
// reading the outcome and dead-letter topics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "testutil/child_process.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
namespace fs = std::filesystem;
using std::chrono::seconds;

constexpr const char* kReserveAndCharge = R"(
saga ReserveAndCharge version 1 {
  timeout 2s
  retry 3 backoff 50ms..1s
  step reserve { command inventory.ReserveItems  compensate inventory.ReleaseReservation }
  step charge  { command payment.ChargeCard      compensate payment.RefundPayment }
}
)";

std::string request(const std::string& id, int amount, const std::string& type) {
  json payload = {{"order_id", id}, {"sku", "widget"}, {"qty", 1}, {"amount", amount}};
  return id + "|" +
         json{{"v", 1},        {"kind", "command"}, {"type", type},
              {"saga_id", id}, {"command_id", id},  {"payload", payload}}
             .dump();
}

class SagadKafka : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = testutil::temp_path("sagad-kafka");
    fs::remove_all(dir);
    fs::create_directories(dir + "/defs");
    std::ofstream(dir + "/defs/reserve_and_charge.saga") << kReserveAndCharge;
    broker = std::make_unique<testutil::ChildProcess>(
        std::vector<std::string>{SAGA_MOCK_BROKER, "--partitions", "2"}, dir + "/broker.log");
    auto line = testutil::wait_for_line(dir + "/broker.log", "bootstrap=", seconds(10));
    ASSERT_TRUE(line.has_value());
    bootstrap = line->substr(10);
    // A restarted member gets its partitions back within seconds, not librdkafka's 45 s.
    std::ofstream(dir + "/sagad.toml") << "[kafka]\n\"bootstrap.servers\" = \"" << bootstrap
                                       << "\"\n\"session.timeout.ms\" = 6000\n";
    for (const char* name : {"inventory", "payment"}) {
      const std::string out = dir + "/" + name + ".out";
      std::vector<std::string> args = {std::string(SAGA_BINARY_DIR "/samples/") + name + "-service",
                                       "--bootstrap", bootstrap, "--db", dir + "/" + name + ".db"};
      if (std::string(name) == "inventory") args.insert(args.end(), {"--stock", "1000"});
      services.push_back(std::make_unique<testutil::ChildProcess>(args, out));
      ASSERT_TRUE(testutil::wait_for_line(out, std::string(name) + "-service: ready", seconds(60)))
          << name;
    }
  }

  void start_sagad() {
    const std::string log = dir + "/sagad.log";
    sagad = std::make_unique<testutil::ChildProcess>(
        std::vector<std::string>{SAGAD, "--config", dir + "/sagad.toml", "--transport", "kafka",
                                 "--definitions", dir + "/defs", "--db", dir + "/log.db", "--http",
                                 "127.0.0.1:0"},
        log);
    ASSERT_TRUE(testutil::wait_for_line(log, "listening=", seconds(30)));
  }

  void produce(const std::vector<std::string>& lines, const std::string& topic = "sagad.requests") {
    std::ofstream(dir + "/produce.txt") << [&] {
      std::string all;
      for (const auto& l : lines) all += l + "\n";
      return all;
    }();
    auto r = testutil::run_command("timeout 30 kcat -b " + bootstrap + " -P -t " + topic +
                                   " -K '|' -l " + dir + "/produce.txt");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Every record of `topic`: key -> values, in the order read.
  std::multimap<std::string, std::string> read(const std::string& topic,
                                               const std::string& format = "%k|%s\\n") {
    auto r = testutil::run_command("timeout 30 kcat -b " + bootstrap + " -C -e -q -t " + topic +
                                   " -f '" + format + "' 2>/dev/null");
    std::multimap<std::string, std::string> out;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      const auto bar = line.find('|');
      if (bar != std::string::npos) out.emplace(line.substr(0, bar), line.substr(bar + 1));
    }
    return out;
  }

  // The outcomes published so far, waiting until every id in `ids` has one.
  std::multimap<std::string, std::string> outcomes_of(const std::vector<std::string>& ids) {
    std::multimap<std::string, std::string> got;
    for (int i = 0; i < 90; i++) {
      got = read("sagad.outcomes");
      bool all = true;
      for (const auto& id : ids) all = all && got.count(id) > 0;
      if (all) return got;
      std::this_thread::sleep_for(seconds(1));
    }
    ADD_FAILURE() << "outcomes missing; sagad's log:\n" << testutil::read_file(dir + "/sagad.log");
    return got;
  }

  // Whether sagad's log says `text` within `timeout`.
  bool logged(const std::string& text, seconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    do {
      if (testutil::read_file(dir + "/sagad.log").find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < until);
    return false;
  }

  std::string sql(const std::string& db, const std::string& query) {
    auto r = testutil::run_command("sqlite3 " + dir + "/" + db + " \"" + query + "\"");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find_last_not_of('\n') + 1);
  }

  std::string dir, bootstrap;
  std::unique_ptr<testutil::ChildProcess> broker, sagad;
  std::vector<std::unique_ptr<testutil::ChildProcess>> services;
};

TEST_F(SagadKafka, StartsSagasFromTheRequestTopicAndPublishesEachOutcomeOnce) {
  start_sagad();
  produce({request("k-1", 100, "ReserveAndCharge"), request("k-2", 900, "ReserveAndCharge"),
           request("k-1", 100, "ReserveAndCharge"),  // a duplicate: idempotent on the id
           request("k-3", 10, "NoSuchSaga"), "k-4|this is not JSON",
           request("k-1", 999, "ReserveAndCharge")});  // the id again with another input
  auto got = outcomes_of({"k-1", "k-2"});
  ASSERT_EQ(got.count("k-1"), 1u);
  ASSERT_EQ(got.count("k-2"), 1u);
  json ok = json::parse(got.find("k-1")->second);
  EXPECT_EQ(ok["kind"], "reply");
  EXPECT_EQ(ok["outcome"], "ok");
  EXPECT_EQ(ok["payload"]["status"], "completed");
  EXPECT_EQ(ok["payload"]["context"]["payment_id"], "pay-k-1");
  json declined = json::parse(got.find("k-2")->second);
  EXPECT_EQ(declined["outcome"], "rejected");
  EXPECT_EQ(declined["payload"]["status"], "compensated");
  EXPECT_THAT(declined["error"].get<std::string>(), HasSubstr("card declined"));

  // What could never start is in the dead-letter topic with its reason; the run went on.
  auto dead = read("sagad.requests.dlq", "%k|%h\\n");
  ASSERT_EQ(dead.count("k-3"), 1u) << testutil::read_file(dir + "/sagad.log");
  EXPECT_THAT(dead.find("k-3")->second, HasSubstr("unknown saga type 'NoSuchSaga'"));
  ASSERT_EQ(dead.count("k-4"), 1u);
  EXPECT_THAT(dead.find("k-4")->second, HasSubstr("not valid JSON"));
  ASSERT_EQ(dead.count("k-1"), 1u);
  EXPECT_THAT(dead.find("k-1")->second, HasSubstr("another input"));

  // Reply lag and dead letters in the metrics.
  auto listening = testutil::wait_for_line(dir + "/sagad.log", "listening=", seconds(1));
  ASSERT_TRUE(listening.has_value());
  httplib::Client http("127.0.0.1", std::stoi(listening->substr(listening->rfind(':') + 1)));
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              HasSubstr("saga_consume_lag_seconds_count{channel=\"orchestrator.replies\"}"));
  EXPECT_THAT(metrics->body, HasSubstr("saga_dead_letters_total 3"));

  // A saga started over HTTP has its outcome published too.
  auto h =
      http.Post("/sagas?wait=10s",
                json{{"type", "ReserveAndCharge"},
                     {"id", "h-1"},
                     {"data", {{"order_id", "h-1"}, {"sku", "widget"}, {"qty", 1}, {"amount", 20}}}}
                    .dump(),
                "application/json");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200) << h->body;
  auto from_http = outcomes_of({"h-1"});
  ASSERT_EQ(from_http.count("h-1"), 1u);
  EXPECT_EQ(json::parse(from_http.find("h-1")->second)["payload"]["status"], "completed");

  // The participants' own ledgers: one reservation each, k-2's released; one charge each for
  // k-1 and h-1.
  EXPECT_EQ(sql("inventory.db", "SELECT id, status FROM reservations ORDER BY id"),
            "res-h-1|held\nres-k-1|held\nres-k-2|released");
  EXPECT_EQ(sql("payment.db", "SELECT count(*) FROM charges"), "2");
  sagad->kill(SIGTERM);
  EXPECT_EQ(sagad->wait(seconds(30)), 0);
}

TEST_F(SagadKafka, RequestsMadeWhileItIsDownStartAfterARestartAndNoOutcomeIsLost) {
  start_sagad();
  produce({request("d-1", 100, "ReserveAndCharge")});
  outcomes_of({"d-1"});
  sagad->kill(SIGKILL);
  ASSERT_EQ(sagad->wait(seconds(10)), 128 + SIGKILL);
  produce({request("d-2", 100, "ReserveAndCharge"), request("d-3", 900, "ReserveAndCharge")});
  start_sagad();
  auto got = outcomes_of({"d-1", "d-2", "d-3"});
  // At least once: d-1 ended within the margin before the kill, so it is published again.
  EXPECT_GE(got.count("d-1"), 1u);
  EXPECT_EQ(json::parse(got.find("d-3")->second)["payload"]["status"], "compensated");
  EXPECT_EQ(sql("inventory.db", "SELECT id, status FROM reservations ORDER BY id"),
            "res-d-1|held\nres-d-2|held\nres-d-3|released");
  EXPECT_EQ(sql("payment.db", "SELECT count(*) FROM charges"), "2");

  // An outcome that ended long before the crash and was never delivered (the watermark is
  // older than it) is published again by the next start.
  sagad->kill(SIGKILL);
  ASSERT_EQ(sagad->wait(seconds(10)), 128 + SIGKILL);
  const size_t before = read("sagad.outcomes").count("d-2");
  sql("log.db", "UPDATE saga_state SET updated_ms = updated_ms - 600000 WHERE saga_id = 'd-2'");
  const long long mark = std::stoll(sql("log.db",
                                        "SELECT updated_ms FROM saga_state WHERE "
                                        "saga_id = 'd-2'")) -
                         1000;
  std::ofstream(dir + "/log.db.outcomes", std::ios::trunc) << mark << "\n";
  start_sagad();
  for (int i = 0; i < 60 && read("sagad.outcomes").count("d-2") <= before; i++)
    std::this_thread::sleep_for(seconds(1));
  EXPECT_EQ(read("sagad.outcomes").count("d-2"), before + 1)
      << testutil::read_file(dir + "/sagad.log");
  EXPECT_GE(std::stoll(testutil::read_file(dir + "/log.db.outcomes")), mark);
  sagad->kill(SIGTERM);
  EXPECT_EQ(sagad->wait(seconds(30)), 0);
}

// Another connection holds the log's write lock: sagad's commits fail (busy) until it lets go.
class WriteLock {
 public:
  explicit WriteLock(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 10'000);
    EXPECT_EQ(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
  }
  ~WriteLock() { release(); }
  void release() {
    if (!db_) return;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
};

TEST_F(SagadKafka, RequestsArrivingWhileTheLogCannotBeWrittenStartOnceWhenItCanAgain) {
  // 300 sagas start at once when the log mends: a step timeout that a slow machine does not
  // reach, so that each ends as its participants decide.
  std::ofstream(dir + "/defs/patient.saga") << R"(
saga PatientReserveAndCharge version 1 {
  timeout 60s
  step reserve { command inventory.ReserveItems  compensate inventory.ReleaseReservation }
  step charge  { command payment.ChargeCard      compensate payment.RefundPayment }
}
)";
  start_sagad();
  produce({request("w-0", 100, "PatientReserveAndCharge")});  // the log exists; sagad is ready
  outcomes_of({"w-0"});
  WriteLock lock(dir + "/log.db");
  // The first wave is accepted into a batch whose commit waits for the lock, then fails.
  produce({request("w-1", 100, "PatientReserveAndCharge"),
           request("w-2", 900, "PatientReserveAndCharge")});
  ASSERT_TRUE(logged("the saga log cannot be written", seconds(60)))
      << testutil::read_file(dir + "/sagad.log");
  // The second wave is refused as retriable: more than the 256 requests sagad holds unsettled,
  // so its consumer also waits for room.
  std::vector<std::string> wave;
  std::vector<std::string> ids = {"w-0", "w-1", "w-2"};
  for (int i = 0; i < 300; i++) {
    ids.push_back("v-" + std::to_string(i));
    wave.push_back(request(ids.back(), 100, "PatientReserveAndCharge"));
  }
  produce(wave);
  ASSERT_TRUE(logged("start requests wait", seconds(30)))
      << testutil::read_file(dir + "/sagad.log");
  std::this_thread::sleep_for(seconds(2));  // the consumer takes the wave up to its limit
  lock.release();

  auto got = outcomes_of(ids);
  for (const auto& id : ids) EXPECT_EQ(got.count(id), 1u) << id;
  ASSERT_EQ(got.count("w-2"), 1u);
  EXPECT_EQ(json::parse(got.find("w-2")->second)["payload"]["status"], "compensated");
  EXPECT_TRUE(logged("the saga log is writable again", seconds(1)));
  // The same cause for 300 requests: logged once, counted, not once per request and retry.
  const std::string log = testutil::read_file(dir + "/sagad.log");
  size_t waits = 0;
  for (size_t at = 0; (at = log.find("start requests wait", at)) != std::string::npos; ++at)
    waits++;
  EXPECT_LE(waits, 2u) << log;
  // Nothing dead-lettered; each participant applied each saga once.
  EXPECT_EQ(read("sagad.requests.dlq").size(), 0u);
  EXPECT_EQ(sql("inventory.db", "SELECT count(*), count(DISTINCT id) FROM reservations"),
            "303|303");
  EXPECT_EQ(sql("inventory.db", "SELECT id FROM reservations WHERE status = 'released'"),
            "res-w-2");
  EXPECT_EQ(sql("payment.db", "SELECT count(*) FROM charges"), "302");
  EXPECT_EQ(sql("log.db", "SELECT count(*) FROM saga_state WHERE status = 'completed'"), "302");
  sagad->kill(SIGTERM);
  EXPECT_EQ(sagad->wait(seconds(30)), 0);
}

}  // namespace
}  // namespace saga
