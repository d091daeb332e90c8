// KafkaTransport against saga-mock-broker in its own process (label `kafka`): the order saga
// end to end, poison records to the dead-letter topic, redelivery of what was never settled,
// a broker taken down mid-run, refused properties.
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "saga/engine.hpp"
#include "saga/kafka_transport.hpp"
#include "saga/memory.hpp"
#include "testutil/child_process.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using namespace std::chrono_literals;

// SAGA_KAFKA_BOOTSTRAP=host:port runs these tests against that cluster instead of a
// saga-mock-broker (topics as the mock creates them must exist there or be auto-created);
// tests that steer the mock (broker down, request errors) are skipped then, and say so.
const char* real_cluster() {
  const char* b = std::getenv("SAGA_KAFKA_BOOTSTRAP");
  return b && *b ? b : nullptr;
}

class KafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* b = real_cluster()) {
      bootstrap = b;
      // Fresh groups that start at the end: earlier runs' records stay where they are.
      run_prefix = "saga-test-" + std::to_string(::getpid()) + "-" +
                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
      return;
    }
    log = testutil::temp_path("broker.log");
    broker = std::make_unique<testutil::ChildProcess>(
        std::vector<std::string>{SAGA_MOCK_BROKER, "--partitions", "4", "--topic",
                                 "orchestrator.replies", "--topic", "inventory.commands", "--topic",
                                 "payment.commands", "--topic", "orders.commands", "--topic",
                                 "probe.commands"},
        log, true);
    auto line = testutil::wait_for_line(log, "bootstrap=", 10s);
    ASSERT_TRUE(line.has_value()) << "no bootstrap line in " << log;
    bootstrap = line->substr(std::string("bootstrap=").size());
  }
  void TearDown() override {
    engine.reset();
    participants.reset();
    orchestrator_bus.reset();
    participant_bus.reset();
    if (!broker) return;
    broker->kill(SIGTERM);
    EXPECT_EQ(broker->wait(10s), 0);
  }
  // For tests that steer the mock broker over its stdin.
  bool mock() const { return broker != nullptr; }
  // With `group`, every channel of the transport shares one consumer in that group.
  std::unique_ptr<kafka::KafkaTransport> transport(const std::string& name,
                                                   const std::string& group = "") {
    kafka::Options o;
    o.max_message_bytes = 256 << 10;
    if (!run_prefix.empty()) o.group_prefix = run_prefix;
    o.properties = {
        {"bootstrap.servers", bootstrap}, {"client.id", name}, {"session.timeout.ms", "6000"}};
    if (real_cluster()) o.properties["auto.offset.reset"] = "latest";
    if (!group.empty()) {
      o.properties["group.id"] = run_prefix + group;
      o.one_consumer = true;
    }
    o.log = [name](const std::string& line) {
      std::fprintf(stderr, "[%s] %s\n", name.c_str(), line.c_str());
    };
    auto t = kafka::KafkaTransport::open(o);
    EXPECT_OK(t);
    return t.ok() ? std::move(*t) : nullptr;
  }
  // The orchestrator and the participants as two separate Kafka clients.
  void start_order_system(bool one_consumer_each = false) {
    orchestrator_bus = transport("orchestrator", one_consumer_each ? "orchestrator" : "");
    participant_bus = transport("participants", one_consumer_each ? "participants" : "");
    ASSERT_TRUE(orchestrator_bus && participant_bus);
    participants = std::make_unique<testutil::OrderParticipants>(*participant_bus);
    ASSERT_OK(participants->start());
    EngineOptions opts;
    opts.definitions = {testutil::place_order_definition()};
    opts.partitions = 2;
    opts.log = [](const std::string& l) { std::fprintf(stderr, "[engine] %s\n", l.c_str()); };
    auto e = Engine::open(opts, store, *orchestrator_bus, clock);
    ASSERT_OK(e);
    engine = std::move(*e);
    ASSERT_OK(participant_bus->wait_ready(Duration(30000)));
    ASSERT_OK(orchestrator_bus->wait_ready(Duration(30000)));
  }
  std::future<Result<SagaOutcome>> order(const std::string& id, bool decline = false) {
    return engine->start(
        {.definition = "PlaceOrder",
         .saga_id = id,
         .input = std::string("{\"decline\":") + (decline ? "true" : "false") + "}"});
  }
  // Ten orders, every fifth declined: 8 complete, 2 are compensated with their release.
  void run_ten_orders(const std::string& prefix) {
    std::vector<std::future<Result<SagaOutcome>>> sagas;
    for (int i = 0; i < 10; ++i) sagas.push_back(order(prefix + std::to_string(i), i % 5 == 0));
    int completed = 0, compensated = 0;
    for (auto& f : sagas) {
      ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
      auto r = f.get();
      ASSERT_OK(r);
      completed += r->status == SagaStatus::kCompleted;
      compensated += r->status == SagaStatus::kCompensated;
    }
    EXPECT_EQ(completed, 8);
    EXPECT_EQ(compensated, 2);
    auto& l = participants->ledger;
    EXPECT_EQ(l.count(l.released, prefix + "0"), 1);  // ReleaseReservation after the decline
    EXPECT_EQ(l.count(l.confirmed, prefix + "1"), 1);
  }
  // Produces one raw record, as a service in another language (or a broken one) would.
  void produce_raw(const std::string& topic, const std::string& value) {
    char err[256];
    rd_kafka_conf_t* c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
    rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    ASSERT_NE(p, nullptr);
    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic.c_str()),
                      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    EXPECT_EQ(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
  }

  std::string log, bootstrap, run_prefix;
  std::unique_ptr<testutil::ChildProcess> broker;
  std::unique_ptr<kafka::KafkaTransport> orchestrator_bus, participant_bus;
  std::unique_ptr<testutil::OrderParticipants> participants;
  MemoryStore store;
  SystemClock clock;
  std::unique_ptr<Engine> engine;
};

TEST_F(KafkaTest, OrderSagaCompletesAndCompensatesOverKafka) {
  start_order_system();
  run_ten_orders("k");
  auto& l = participants->ledger;
  EXPECT_EQ(l.count(l.charged, "k0"), 0);
}

// As saga-bench runs: each client sets one_consumer, so its channels (three participants on
// one client) share one consumer.
TEST_F(KafkaTest, OrderSagaCompletesAndCompensatesWithEachClientsChannelsOnOneConsumer) {
  start_order_system(true);
  run_ten_orders("s");
  const auto stats = participant_bus->stats();
  EXPECT_EQ(stats.consumers, 1u);  // three channels, one consumer
  for (const char* channel : {"inventory", "payment", "orders"})
    EXPECT_GT(stats.lag.count(channel) ? stats.lag.at(channel).samples : 0u, 0u) << channel;
}

TEST_F(KafkaTest, PoisonRecordsGoToTheDeadLetterTopicAndConsumptionGoesOn) {
  if (!mock())
    GTEST_SKIP() << "reads topics from their start: only against a fresh saga-mock-broker";
  start_order_system();
  produce_raw("inventory.commands", "this is not json");
  produce_raw("inventory.commands", R"({"hello":"world"})");
  produce_raw("inventory.commands", std::string(300 << 10, 'x'));  // over the 256 KiB limit
  produce_raw(
      "inventory.commands",
      R"({"v":1,"kind":"command","type":"Teleport","saga_id":"z","command_id":"z/teleport/a1",)"
      R"("reply_to":"orchestrator.replies","compensation":false,"payload":{}})");
  auto f = order("after-poison");
  ASSERT_EQ(f.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(f.get()->status, SagaStatus::kCompleted);
  for (int i = 0; i < 200 && participant_bus->stats().dead_letters < 4; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(participant_bus->stats().dead_letters, 4u);

  // The dead letters, with their reasons, as an operator would read them.
  char err[256];
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  rd_kafka_conf_set(c, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(c, "group.id", "operator", err, sizeof err);
  rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* t = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(t, "inventory.commands.dlq", RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, t);
  rd_kafka_topic_partition_list_destroy(t);
  std::vector<std::string> reasons;
  for (int i = 0; i < 300 && reasons.size() < 4; ++i) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m && !m->err) {
      rd_kafka_headers_t* h = nullptr;
      const void* v = nullptr;
      size_t n = 0;
      if (rd_kafka_message_headers(m, &h) == 0 &&
          rd_kafka_header_get_last(h, "saga-dlq-reason", &v, &n) == 0)
        reasons.emplace_back(static_cast<const char*>(v), n);
    }
    if (m) rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  ASSERT_EQ(reasons.size(), 4u);
  std::sort(reasons.begin(), reasons.end());
  EXPECT_NE(reasons[0].find("no handler for Teleport at inventory"), std::string::npos)
      << reasons[0];
  EXPECT_NE(reasons[1].find("not a saga message: message is not valid JSON"), std::string::npos)
      << reasons[1];
  EXPECT_NE(reasons[2].find("not a saga message: message lacks field"), std::string::npos)
      << reasons[2];
  EXPECT_NE(reasons[3].find("exceeds the limit"), std::string::npos) << reasons[3];
}

// A probe record on `channel`, all with one key (one partition, in order).
void send_probe(Transport& bus, const std::string& channel, const std::string& id) {
  Message m;
  m.channel = channel;
  m.saga_id = "p";
  m.command_id = id;
  m.type = "Probe";
  m.reply_to = "x.replies";
  bus.send(m, [](Status st) { EXPECT_OK(st); });
}

TEST_F(KafkaTest, UnsettledMessageIsDeliveredAgainAfterTheConsumerRestarts) {
  if (!mock())
    GTEST_SKIP() << "reads topics from their start: only against a fresh saga-mock-broker";
  auto bus = transport("probe");
  ASSERT_TRUE(bus);
  std::promise<void> first_two;
  int seen = 0;
  ASSERT_OK(bus->subscribe("probe", [&](Message m, Ack ack) {
    if (m.command_id == "settled") ack();
    if (++seen == 2) first_two.set_value();
  }));
  for (const char* id : {"settled", "kept"}) send_probe(*bus, "probe", id);
  ASSERT_EQ(first_two.get_future().wait_for(30s), std::future_status::ready);
  bus->unsubscribe("probe");  // the consumer restarts: only the unsettled one comes again

  std::promise<std::string> again;
  bool set = false;
  ASSERT_OK(bus->subscribe("probe", [&](Message m, Ack ack) {
    ack();
    if (!set) {
      set = true;
      again.set_value(m.command_id);
    }
  }));
  EXPECT_OK(bus->wait_ready(Duration(30000)));
  auto f = again.get_future();
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(f.get(), "kept");
}

// Records seen by a test's handlers, read under their lock.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<std::string>> by_channel;
  void add(const std::string& channel, const std::string& id) {
    std::lock_guard l(mu);
    by_channel[channel].push_back(id);
    cv.notify_all();
  }
  // The ids `channel` saw, once it saw at least n (empty after 30 s without).
  std::vector<std::string> wait(const std::string& channel, size_t n) {
    std::unique_lock l(mu);
    if (!cv.wait_for(l, 30s, [&] { return by_channel[channel].size() >= n; })) return {};
    return by_channel[channel];
  }
};

// Two channels on one consumer: taking one away leaves the other served and its handler is
// not called again; what it left unsettled comes again when it is back.
TEST_F(KafkaTest, ChannelLeavingASharedConsumerStopsItsHandlerAndTheOtherGoesOn) {
  if (!mock())
    GTEST_SKIP() << "reads topics from their start: only against a fresh saga-mock-broker";
  auto bus = transport("probe", "probe-group");
  ASSERT_TRUE(bus);
  Seen seen;
  std::atomic<bool> gone{false}, late_call{false};
  ASSERT_OK(bus->subscribe("probe", [&](Message m, Ack ack) {
    if (gone) late_call = true;
    if (m.command_id == "settled") ack();
    seen.add("probe", m.command_id);
  }));
  ASSERT_OK(bus->subscribe("orders", [&](Message m, Ack ack) {
    ack();
    seen.add("orders", m.command_id);
  }));
  EXPECT_EQ(bus->subscribe("probe.commands", [](Message, Ack) {}).code(),
            Code::kAlreadyExists);  // the same topic as channel probe
  EXPECT_EQ(bus->stats().consumers, 1u);
  ASSERT_OK(bus->wait_ready(Duration(30000)));
  send_probe(*bus, "probe", "settled");
  send_probe(*bus, "probe", "kept");
  send_probe(*bus, "orders", "o1");
  ASSERT_EQ(seen.wait("probe", 2).size(), 2u);
  ASSERT_EQ(seen.wait("orders", 1).size(), 1u);

  bus->unsubscribe("probe");
  gone = true;
  send_probe(*bus, "probe", "late");
  send_probe(*bus, "orders", "o2");
  auto orders = seen.wait("orders", 2);
  ASSERT_EQ(orders.size(), 2u);
  EXPECT_EQ(orders[1], "o2");

  ASSERT_OK(bus->subscribe("probe", [&](Message m, Ack ack) {
    ack();
    seen.add("again", m.command_id);
  }));
  auto again = seen.wait("again", 2);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0], "kept");  // "settled" was acknowledged: its offset was committed
  EXPECT_EQ(again[1], "late");
  EXPECT_FALSE(late_call);
}

// unsubscribe() returns only once a handler of that channel that is running has returned, and
// a channel that leaves and comes back at once under a stream of records loses none of them.
TEST_F(KafkaTest, ChannelLeavingASharedConsumerWaitsForItsHandlerAndLosesNoRecord) {
  if (!mock())
    GTEST_SKIP() << "reads topics from their start: only against a fresh saga-mock-broker";
  auto bus = transport("probe", "probe-group");
  ASSERT_TRUE(bus);
  Seen seen;
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> handler_done{false};
  ASSERT_OK(bus->subscribe("probe", [&, first = true](Message m, Ack ack) mutable {
    if (first) {
      first = false;
      entered.set_value();
      released.wait();
      std::this_thread::sleep_for(100ms);
      handler_done = true;
    }
    ack();
    seen.add("probe", m.command_id);
  }));
  ASSERT_OK(bus->subscribe("orders", [&](Message, Ack ack) { ack(); }));
  ASSERT_OK(bus->wait_ready(Duration(30000)));
  constexpr int kRecords = 300;
  for (int i = 0; i < kRecords; ++i) send_probe(*bus, "probe", "r" + std::to_string(i));
  ASSERT_EQ(entered.get_future().wait_for(30s), std::future_status::ready);
  auto leaving = std::async(std::launch::async, [&] { bus->unsubscribe("probe"); });
  EXPECT_EQ(leaving.wait_for(300ms), std::future_status::timeout);  // the handler still runs
  release.set_value();
  leaving.get();
  EXPECT_TRUE(handler_done);

  ASSERT_OK(bus->subscribe("probe", [&](Message m, Ack ack) {
    ack();
    seen.add("probe", m.command_id);
  }));
  std::set<std::string> ids;
  for (int i = 0; i < 300 && ids.size() < kRecords; ++i) {
    auto all = seen.wait("probe", 1);
    ids = std::set<std::string>(all.begin(), all.end());
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kRecords));
}

TEST_F(KafkaTest, SagasFinishWhenTheBrokerGoesDownMidRunAndComesBack) {
  if (!mock()) GTEST_SKIP() << "takes the broker down: only against saga-mock-broker";
  start_order_system();
  std::vector<std::future<Result<SagaOutcome>>> sagas;
  for (int i = 0; i < 20; ++i) sagas.push_back(order("d" + std::to_string(i), i % 10 == 0));
  std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(broker->write_line("down -1"));
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(broker->write_line("up -1"));
  int ended = 0;
  for (auto& f : sagas) {
    ASSERT_EQ(f.wait_for(120s), std::future_status::ready);
    auto r = f.get();
    ASSERT_OK(r);
    ended += is_terminal(r->status);
  }
  EXPECT_EQ(ended, 20);
  auto& l = participants->ledger;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "d" + std::to_string(i);
    EXPECT_LE(l.count(l.reserved, id), 1) << id;
    EXPECT_LE(l.count(l.charged, id), 1) << id;
    EXPECT_EQ(l.count(l.reserved, id), l.count(l.released, id) + l.count(l.confirmed, id)) << id;
  }
}

// docs/protocol.md's participant by hand: kcat reads the command with its key and headers, and a
// hand-written reply produced with kcat completes the saga.
TEST_F(KafkaTest, KcatReadsACommandAndTheOrchestratorAcceptsAHandWrittenReply) {
  if (!mock())
    GTEST_SKIP() << "reads topics from their start: only against a fresh saga-mock-broker";
  orchestrator_bus = transport("orchestrator");
  ASSERT_TRUE(orchestrator_bus);
  EngineOptions opts;
  opts.definitions = {Definition::Builder("Reserve")
                          .default_timeout(Duration(30000))
                          .step("reserve", "inventory.ReserveItems", "inventory.ReleaseReservation")
                          .build()
                          .value()};
  opts.log = [](const std::string&) {};
  auto e = Engine::open(opts, store, *orchestrator_bus, clock);
  ASSERT_OK(e);
  engine = std::move(*e);
  ASSERT_OK(orchestrator_bus->wait_ready(Duration(30000)));
  auto f = engine->start(
      {.definition = "Reserve", .saga_id = "order-42", .input = R"({"order_id":"42"})"});

  auto read = testutil::run_command("timeout 30 kcat -b " + bootstrap +
                                    " -C -t inventory.commands -o beginning -c 1 -e -q "
                                    "-f 'key=%k\\nheaders=%h\\n%s\\n'");
  ASSERT_EQ(read.exit_code, 0) << "is kcat installed (scripts/setup.sh)? " << read.err;
  EXPECT_NE(read.out.find("key=order-42\n"), std::string::npos) << read.out;
  EXPECT_NE(read.out.find("saga-type=ReserveItems"), std::string::npos) << read.out;
  EXPECT_NE(read.out.find("saga-reply-to=orchestrator.replies"), std::string::npos) << read.out;
  std::cout << read.out;
  const size_t at = read.out.find("\n{");
  ASSERT_NE(at, std::string::npos) << read.out;
  const std::string value = read.out.substr(at + 1);
  auto command = decode_json(value.substr(0, value.find('\n')));
  ASSERT_OK(command);
  EXPECT_EQ(command->command_id, "order-42/reserve/a1");

  const std::string reply =
      R"(order-42|{"v":1,"kind":"reply","type":"ReserveItems","saga_id":"order-42",)"
      R"("command_id":"order-42/reserve/a1","compensation":false,"outcome":"ok",)"
      R"("payload":{"reservation_id":"res-42"}})";
  auto wrote = testutil::run_command("echo '" + reply + "' | timeout 30 kcat -b " + bootstrap +
                                     " -P -t orchestrator.replies -K '|'");
  ASSERT_EQ(wrote.exit_code, 0) << wrote.err;
  ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
  auto outcome = f.get();
  ASSERT_OK(outcome);
  EXPECT_EQ(outcome->status, SagaStatus::kCompleted);
  EXPECT_NE(outcome->context.find("res-42"), std::string::npos) << outcome->context;
}

TEST_F(KafkaTest, SagasFinishThroughProduceAndFetchRequestErrors) {
  if (!mock()) GTEST_SKIP() << "pushes request errors: only against saga-mock-broker";
  start_order_system();
  // NOT_LEADER_FOR_PARTITION (6) and REQUEST_TIMED_OUT (7) on Produce (api 0) and Fetch (1),
  // and dropped connections (-195).
  for (const char* line : {"errors 0 6 10", "errors 0 7 10", "errors 1 6 10", "errors 1 -195 5"}) {
    ASSERT_TRUE(broker->write_line(line));
    ASSERT_TRUE(testutil::wait_for_line(log, std::string("ok ") + line, 5s).has_value()) << line;
  }
  std::vector<std::future<Result<SagaOutcome>>> sagas;
  for (int i = 0; i < 20; ++i) sagas.push_back(order("e" + std::to_string(i), i % 10 == 0));
  int completed = 0;
  for (auto& f : sagas) {
    ASSERT_EQ(f.wait_for(120s), std::future_status::ready);
    auto r = f.get();
    ASSERT_OK(r);
    completed += r->status == SagaStatus::kCompleted;
  }
  EXPECT_EQ(completed, 18);
  auto& l = participants->ledger;
  for (int i = 0; i < 20; ++i) {
    const std::string id = "e" + std::to_string(i);
    EXPECT_EQ(l.count(l.reserved, id), 1) << id;
    EXPECT_LE(l.count(l.charged, id), 1) << id;
  }
}

// The harness holds every command and reply, then releases them in seeded random order, a
// third of them twice, on top of Kafka's own delivery.
TEST_F(KafkaTest, CommandsAndRepliesDuplicatedAndReorderedLeaveEveryLedgerConsistent) {
  orchestrator_bus = transport("orchestrator");
  participant_bus = transport("participants");
  ASSERT_TRUE(orchestrator_bus && participant_bus);
  testutil::FaultyTransport engine_side(orchestrator_bus.get()),
      participant_side(participant_bus.get());
  engine_side.hold(true);
  participant_side.hold(true);
  participants = std::make_unique<testutil::OrderParticipants>(participant_side);
  ASSERT_OK(participants->start());
  EngineOptions opts;
  opts.definitions = {testutil::place_order_definition()};
  opts.partitions = 2;
  opts.log = [](const std::string&) {};
  auto e = Engine::open(opts, store, engine_side, clock);
  ASSERT_OK(e);
  engine = std::move(*e);
  ASSERT_OK(participant_bus->wait_ready(Duration(30000)));
  ASSERT_OK(orchestrator_bus->wait_ready(Duration(30000)));

  std::atomic<bool> stop{false};
  std::thread shuffler([&] {
    testutil::SeededRandom rnd;
    while (!stop) {
      bool any = engine_side.release_random(rnd.engine(), 0.3);
      any |= participant_side.release_random(rnd.engine(), 0.3);
      if (!any) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  std::vector<std::future<Result<SagaOutcome>>> sagas;
  for (int i = 0; i < 30; ++i) sagas.push_back(order("r" + std::to_string(i), i % 10 == 0));
  std::map<std::string, SagaStatus> ended;
  for (int i = 0; i < 30; ++i) {
    if (sagas[i].wait_for(120s) != std::future_status::ready) break;
    auto r = sagas[i].get();
    if (r.ok()) ended["r" + std::to_string(i)] = r->status;
  }
  engine.reset();  // before the harness that carries its messages goes
  stop = true;
  shuffler.join();
  ASSERT_EQ(ended.size(), 30u);
  auto& l = participants->ledger;
  for (const auto& [id, status] : ended) {
    SCOPED_TRACE(id + " " + status_name(status));
    EXPECT_EQ(l.count(l.reserved, id), 1);  // never applied twice
    EXPECT_LE(l.count(l.charged, id), 1);
    if (status == SagaStatus::kCompleted) {
      EXPECT_EQ(l.count(l.confirmed, id), 1);
      EXPECT_EQ(l.count(l.released, id) + l.count(l.refunded, id), 0);
    } else {
      ASSERT_EQ(status, SagaStatus::kCompensated);
      EXPECT_EQ(l.count(l.released, id), 1);
      EXPECT_EQ(l.count(l.refunded, id), l.count(l.charged, id));
      EXPECT_EQ(l.count(l.confirmed, id), 0);
    }
  }
  participants.reset();
}

TEST(KafkaOptions, PropertiesThatRunCommandsOrLoadCodeAreRefused) {
  for (const char* key :
       {"sasl.kerberos.kinit.cmd", "plugin.library.paths", "ssl.engine.location"}) {
    kafka::Options o;
    o.properties = {{"bootstrap.servers", "127.0.0.1:9"}, {key, "/tmp/x"}};
    auto t = kafka::KafkaTransport::open(o);
    ASSERT_FALSE(t.ok()) << key;
    EXPECT_NE(t.status().message().find(key), std::string::npos);
    EXPECT_EQ(t.status().message().find("/tmp/x"), std::string::npos) << "values are never shown";
  }
  kafka::Options o;
  o.properties = {{"bootstrap.servers", "127.0.0.1:9"}, {"debug", "broker,conf"}};
  EXPECT_FALSE(kafka::KafkaTransport::open(o).ok());
  o.properties = {{"bootstrap.servers", "127.0.0.1:9"},
                  {"sasl.password", "hunter2"},
                  {"no.such.property", "hunter2"}};
  auto t = kafka::KafkaTransport::open(o);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("no.such.property"), std::string::npos);
  EXPECT_EQ(t.status().message().find("hunter2"), std::string::npos);
}

}  // namespace
}  // namespace saga
