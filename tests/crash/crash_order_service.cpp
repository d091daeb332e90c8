// crash-order-service: the embedded order service the crash test kills with SIGKILL and
// restarts. The engine (SQLite log, synchronous=FULL) and three in-process participants, each
// on its own SQLite file with an append-only ledger.
// The bus loses and duplicates messages at random, so timeouts, retries and compensations of
// possibly applied steps happen too.
//
// Every run starts sagas o0..o{N-1} (idempotent on the id: those already in the log are joined
// or answered), keeps `--window` in flight, and exits 0 once all have ended.
// The participants and their ledgers are testutil's LedgerParticipants (the fault tests run
// the same system in one process).
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>

#include "saga/engine.hpp"
#include "saga/kafka_transport.hpp"
#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "saga/sqlite_participant_store.hpp"
#include "saga/sqlite_store.hpp"
#include "testutil/ledger_system.hpp"

using namespace saga;

namespace {

// Drops or duplicates a fraction of messages; seeded.
class LossyBus : public TransportWrapper {
 public:
  LossyBus(Transport* target, uint64_t seed, double drop, double dup)
      : TransportWrapper(target), rng_(seed), drop_(drop), dup_(dup) {}
  void send(Message m, Completion done) override {
    double r;
    {
      std::lock_guard l(mu_);
      r = std::uniform_real_distribution<double>(0, 1)(rng_);
    }
    if (r < drop_) {  // lost after the broker took it
      done(Status::Ok());
      return;
    }
    if (r < drop_ + dup_) TransportWrapper::send(m, [](Status) {});
    TransportWrapper::send(std::move(m), std::move(done));
  }

 private:
  std::mutex mu_;
  std::mt19937_64 rng_;
  double drop_, dup_;
};

const char* flag_text(int argc, char** argv, const std::string& name) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == "--" + name) return argv[i + 1];
  return nullptr;
}
int flag(int argc, char** argv, const std::string& name, int fallback) {
  const char* v = flag_text(argc, argv, name);
  return v ? std::atoi(v) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: crash-order-service DIR [--sagas N] [--window N] [--seed S] "
                 "[--bootstrap HOST:PORT]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int sagas = flag(argc, argv, "sagas", 2000);
  const int window = flag(argc, argv, "window", 1000);
  const int seed = flag(argc, argv, "seed", 1);
  const double drop = flag(argc, argv, "drop-permille", 10) / 1000.0;
  const double dup = flag(argc, argv, "dup-permille", 20) / 1000.0;

  // In memory, the participants run here; over Kafka (--bootstrap) they are another process
  // (kafka-ledger-participants) and the broker is a third.
  MemoryTransport memory;
  std::unique_ptr<kafka::KafkaTransport> kafka_bus;
  Transport* bus = &memory;
  if (const char* bootstrap = flag_text(argc, argv, "bootstrap")) {
    auto k = kafka::KafkaTransport::open(
        {.properties = {{"bootstrap.servers", bootstrap}, {"session.timeout.ms", "6000"}}});
    if (!k.ok()) {
      std::fprintf(stderr, "%s\n", k.status().to_string().c_str());
      return 3;
    }
    kafka_bus = std::move(*k);
    bus = kafka_bus.get();
  }
  LossyBus lossy(bus, static_cast<uint64_t>(seed), drop, dup);
  std::unique_ptr<testutil::LedgerParticipants> participants;
  if (!kafka_bus) {
    participants = std::make_unique<testutil::LedgerParticipants>(
        lossy, testutil::OrderSystemFiles::in(dir), SqliteOptions{});
    (void)participants->start();
  }

  auto log = SqliteStore::open({.path = dir + "/saga-log.db"});
  if (!log.ok()) {
    std::fprintf(stderr, "%s\n", log.status().to_string().c_str());
    return 3;
  }
  const Definition def = testutil::ledger_order_definition();
  SystemClock clock;
  EngineOptions opts;
  opts.definitions = {def};
  opts.partitions = 2;
  opts.log = [](const std::string&) {};  // lost messages are expected here
  auto engine = Engine::open(opts, **log, lossy, clock);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return 3;
  }
  if (kafka_bus) {
    if (Status st = kafka_bus->wait_ready(Duration(60000)); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      return 3;
    }
  }

  // Sagas the log already holds as ended are not started again, so a boot costs O(active).
  std::vector<int> todo;
  {
    auto all = (*log)->list({.limit = static_cast<size_t>(sagas) * 2});
    if (!all.ok()) return 3;
    std::vector<bool> done(sagas, false);
    for (const SagaSummary& s : *all) {
      const int i = std::atoi(s.id.c_str() + 1);
      if (i >= 0 && i < sagas && is_terminal(s.status)) done[i] = true;
    }
    for (int i = 0; i < sagas; ++i)
      if (!done[i]) todo.push_back(i);
  }
  std::mutex mu;
  std::condition_variable cv;
  size_t next = 0, ended = 0, failed = 0;
  std::function<void()> start_next = [&] {
    int i;
    {
      std::lock_guard l(mu);
      if (next >= todo.size()) return;
      i = todo[next++];
    }
    const std::string input = testutil::order_input(i);
    (*engine)->start(
        {.definition = "PlaceOrder", .saga_id = "o" + std::to_string(i), .input = input},
        [&](Result<SagaOutcome> r) {
          {
            std::lock_guard l(mu);
            ++ended;
            if (!r.ok() || !is_terminal(r->status)) ++failed;
          }
          cv.notify_all();
          start_next();
        });
  };
  for (int k = 0; k < window; ++k) start_next();
  std::unique_lock l(mu);
  cv.wait(l, [&] { return ended == todo.size(); });
  l.unlock();
  const Status closed = (*engine)->close();
  std::printf("done: %zu sagas ended in this run, %zu not terminal; close: %s\n", ended, failed,
              closed.to_string().c_str());
  return failed == 0 && closed.ok() ? 0 : 1;
}
