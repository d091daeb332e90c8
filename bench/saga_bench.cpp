// saga-bench: the reference workload (docs/performance.md). Embedded mode: SQLite event log
// (synchronous=FULL unless told otherwise), in-memory transport, participants in-process doing
// a map update. Kafka mode: the same, but the orchestrator and the participants are two Kafka
// clients of saga-mock-broker (started here unless --bootstrap names a cluster). Verifies the
// end counts and prints one JSON line per run.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "cli.hpp"
#include "http_load.hpp"
#include "saga/engine.hpp"
#include "saga/kafka_transport.hpp"
#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "saga/sqlite_store.hpp"
#include "workload.hpp"

using namespace saga;
using Clock_ = std::chrono::steady_clock;

namespace {

Definition place_order() {
  return Definition::Builder("PlaceOrder", 1)
      .default_timeout(Duration(30000))
      .default_retry({3, Duration(100), 2.0, Duration(5000), 0.2})
      .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
      .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
      .step("confirm_order", "orders.ConfirmOrder")
      .retry({RetryPolicy::kForever, Duration(200), 2.0, Duration(30000), 0.2})
      .build()
      .value();
}

// saga-mock-broker as a child process; stopped (SIGTERM) when this goes away.
class Broker {
 public:
  static std::unique_ptr<Broker> start(const std::string& program, int partitions) {
    int fds[2];
    if (pipe(fds) != 0) return nullptr;
    const std::string parts = std::to_string(partitions);
    std::vector<std::string> args = {program, "--partitions", parts};
    for (const char* t :
         {"inventory.commands", "payment.commands", "orders.commands", "orchestrator.replies"}) {
      args.push_back("--topic");
      args.push_back(t);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      close(fds[1]);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    auto b = std::unique_ptr<Broker>(new Broker(pid));
    FILE* out = fdopen(fds[0], "r");
    char line[512] = {0};
    if (out == nullptr || fgets(line, sizeof line, out) == nullptr) return nullptr;
    fclose(out);
    std::string l(line);
    if (l.rfind("bootstrap=", 0) != 0) return nullptr;
    b->bootstrap = l.substr(10, l.find_last_not_of("\r\n") - 9);
    return b;
  }
  ~Broker() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::string bootstrap;

 private:
  explicit Broker(pid_t pid) : pid_(pid) {}
  pid_t pid_;
};

double rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"saga-bench: the order-saga reference workload"};
  std::string mode = "embedded", run = "throughput", sync = "full", db;
  int sagas = 0, inflight = 0, partitions = 1, max_batch = 2048;
  std::string bootstrap, broker_program;
  std::vector<std::string> kafka_props;
  int topic_partitions = 1;  // the mock's fetch does best with one
  std::string url;
  app.add_option("--mode", mode,
                 "embedded (in-memory transport), kafka, or http (a running sagad, --url)")
      ->check(CLI::IsMember({"embedded", "kafka", "http"}));
  app.add_option("--url", url,
                 "HTTP mode: sagad's address, e.g. http://127.0.0.1:8080 (run it with "
                 "--participants workload)");
  app.add_option("--run", run, "throughput or latency")
      ->check(CLI::IsMember({"throughput", "latency"}));
  app.add_option("--sagas", sagas, "Sagas to run (default 50000 throughput, 2000 latency)")
      ->check(CLI::Range(1, 10'000'000));
  app.add_option("--inflight", inflight, "Sagas in flight, closed loop (default 64; latency: 1)")
      ->check(CLI::Range(1, 100'000));
  app.add_option("--sync", sync, "SQLite synchronous: full (durable, default), normal, off")
      ->check(CLI::IsMember({"full", "normal", "off"}));
  app.add_option("--partitions", partitions, "Engine partitions (threads)")
      ->check(CLI::Range(1, 64));
  app.add_option("--max-batch", max_batch, "Decisions per commit, at most")
      ->check(CLI::Range(1, 1'000'000));
  bool overwrite = false;
  app.add_option("--db", db, "Event log file (default: a fresh file in the temp folder)");
  app.add_option("--bootstrap", bootstrap,
                 "Kafka mode: a cluster to use (default: start saga-mock-broker)");
  app.add_option("--broker-program", broker_program,
                 "Kafka mode: the saga-mock-broker to start (default: beside saga-bench's "
                 "build folder, else on PATH)");
  app.add_option("--kafka", kafka_props, "Kafka mode: a librdkafka property K=V (repeatable)");
  app.add_option("--topic-partitions", topic_partitions,
                 "Kafka mode: partitions per topic of the started broker")
      ->check(CLI::Range(1, 256));
  app.add_flag("--overwrite", overwrite, "Replace the --db file if it exists");
  saga::apps::add_version(app, "saga-bench");
  if (auto code = saga::apps::parse_command_line(app, argc, argv)) return *code;
  if (sagas == 0) sagas = run == "throughput" ? 50000 : 2000;
  if (inflight == 0) inflight = run == "throughput" ? 64 : 1;

  if (mode == "http") {
    if (url.empty()) {
      std::cerr << "saga-bench: --mode http needs --url (a running sagad)\n";
      return 2;
    }
    return sagabench::run_http(url, run, sagas, inflight);
  }
  namespace fs = std::filesystem;
  if (db.empty()) {
    db = (fs::temp_directory_path() / "saga-bench.db").string();
    overwrite = true;  // our own scratch file
  }
  if (fs::exists(db) && !overwrite) {
    std::cerr << "saga-bench: " << db
              << " exists; refusing to replace it (a saga log?). Pass --overwrite to replace it.\n";
    return 2;
  }
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db + suffix);
  SqliteOptions so{.path = db};
  so.sync = sync == "full"     ? SqliteOptions::Sync::kFull
            : sync == "normal" ? SqliteOptions::Sync::kNormal
                               : SqliteOptions::Sync::kOff;
  auto store = SqliteStore::open(so);
  if (!store.ok()) {
    std::cerr << store.status().to_string() << "\n";
    return 1;
  }
  MemoryTransport memory;
  Transport* engine_bus = &memory;
  Transport* participant_bus = &memory;
  std::unique_ptr<Broker> broker;
  std::unique_ptr<kafka::KafkaTransport> orchestrator_kafka, participant_kafka;
  std::map<std::string, std::string> client_props;  // reported in the JSON line
  if (mode == "kafka") {
    if (bootstrap.empty()) {
      if (broker_program.empty()) {
        const auto beside = fs::path(argv[0]).parent_path().parent_path() / "apps" /
                            "saga-mock-broker" / "saga-mock-broker";
        broker_program = fs::exists(beside) ? beside.string() : "saga-mock-broker";
      }
      broker = Broker::start(broker_program, topic_partitions);
      if (!broker) {
        std::cerr << "saga-bench: could not start " << broker_program << "\n";
        return 1;
      }
      bootstrap = broker->bootstrap;
    }
    // The latency run (one saga in flight) has nothing to batch: send at once. The throughput
    // run lingers half a millisecond and lets records gather while one produce request is out. On
    // the mock only, poll: it holds a fetch that found nothing for the whole fetch.wait.max.ms even
    // when a record arrives meanwhile (a real broker answers at once). docs/performance.md has the
    // figures of each.
    if (run == "latency") {
      client_props["linger.ms"] = "0";
    } else {
      client_props["linger.ms"] = "0.5";
      client_props["max.in.flight.requests.per.connection"] = "1";
    }
    if (broker) client_props["fetch.wait.max.ms"] = "0";
    for (const std::string& kv : kafka_props) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) {
        std::cerr << "saga-bench: --kafka takes KEY=VALUE, not '" << kv.substr(0, 64) << "'\n";
        return 2;
      }
      client_props[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    std::map<std::string, std::string> props = client_props;
    props["bootstrap.servers"] = bootstrap;
    // As two services would be: each process its own group, its channels on one consumer.
    const bool own_groups = !props.count("group.id");
    for (auto* k : {&orchestrator_kafka, &participant_kafka}) {
      if (own_groups)
        props["group.id"] =
            k == &orchestrator_kafka ? "saga-bench.orchestrator" : "saga-bench.participants";
      auto t = kafka::KafkaTransport::open(
          {.properties = props, .one_consumer = true, .log = [](const std::string& l) {
             std::cerr << "kafka: " << l << "\n";
           }});
      if (!t.ok()) {
        std::cerr << t.status().to_string() << "\n";
        return 1;
      }
      *k = std::move(*t);
    }
    engine_bus = orchestrator_kafka.get();
    participant_bus = participant_kafka.get();
  } else if (mode != "embedded") {
    std::cerr << "saga-bench: --mode must be embedded or kafka\n";
    return 2;
  }
  samples::WorkloadParticipants world(*participant_bus);
  (void)world.start();
  SystemClock clock;
  EngineOptions opts;
  opts.definitions = {place_order()};
  opts.partitions = partitions;
  opts.max_batch = static_cast<size_t>(max_batch);
  std::atomic<int64_t> commit_ns{0};
  opts.on_commit = [&commit_ns](size_t, std::chrono::nanoseconds took) {
    commit_ns += took.count();
  };
  auto engine = Engine::open(opts, **store, *engine_bus, clock);
  if (!engine.ok()) {
    std::cerr << engine.status().to_string() << "\n";
    return 1;
  }
  for (auto* k : {orchestrator_kafka.get(), participant_kafka.get()}) {
    if (k == nullptr) continue;
    if (Status st = k->wait_ready(Duration(60000)); !st.ok()) {
      std::cerr << st.to_string() << "\n";
      return 1;
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  int next = 0, done = 0, completed = 0, compensated = 0, errors = 0;
  std::vector<double> latencies(sagas);
  std::function<void()> launch = [&] {
    int i;
    {
      std::lock_guard l(mu);
      if (next >= sagas) return;
      i = next++;
    }
    const std::string id = "order-" + std::to_string(i);
    const std::string input = "{\"order_id\":\"" + id +
                              "\",\"amount\":" + std::to_string(10 + i % 90) +
                              (i % 10 == 0 ? ",\"fail\":true}" : "}");
    const auto t0 = Clock_::now();
    (*engine)->start({.definition = "PlaceOrder", .saga_id = id, .input = input},
                     [&, i, t0](Result<SagaOutcome> r) {
                       const double ms =
                           std::chrono::duration<double, std::milli>(Clock_::now() - t0).count();
                       {
                         std::lock_guard l(mu);
                         latencies[i] = ms;
                         ++done;
                         if (!r.ok()) {
                           ++errors;
                         } else if (r->status == SagaStatus::kCompleted) {
                           ++completed;
                         } else if (r->status == SagaStatus::kCompensated) {
                           ++compensated;
                         } else {
                           ++errors;
                         }
                       }
                       cv.notify_all();
                       launch();
                     });
  };
  const auto start = Clock_::now();
  for (int k = 0; k < inflight; ++k) launch();
  {
    std::unique_lock l(mu);
    cv.wait(l, [&] { return done == sagas; });
  }
  const double secs = std::chrono::duration<double>(Clock_::now() - start).count();
  const double rss = rss_mb();
  // Mean time from a record's timestamp (its produce call) to its handler, by channel: the
  // hops' share of a saga's latency. Read before close() unsubscribes.
  nlohmann::json hop = nlohmann::json::object();
  for (auto* t : {orchestrator_kafka.get(), participant_kafka.get()})
    if (t != nullptr)
      for (const auto& [channel, lag] : t->stats().lag)
        if (lag.samples > 0)
          hop[channel] = std::round(static_cast<double>(lag.ms_sum) / lag.samples * 100) / 100;
  (*engine)->close();
  const EngineMetrics m = (*engine)->metrics();

  // The workload's checks.
  int not_released = 0, double_released = 0, released_unexpected = 0;
  for (int i = 0; i < sagas; ++i) {
    const std::string id = "order-" + std::to_string(i);
    const int rel = world.released.count(id) ? world.released[id] : 0;
    if (i % 10 == 0 && rel == 0) ++not_released;
    if (rel > 1) ++double_released;
    if (i % 10 != 0 && rel > 0) ++released_unexpected;
  }
  const int want_compensated = (sagas + 9) / 10;
  const bool ok = errors == 0 && compensated == want_compensated &&
                  completed == sagas - want_compensated && not_released == 0 &&
                  double_released == 0 && released_unexpected == 0 && m.active == 0;

  nlohmann::json out{
      {"mode", mode},
      {"topic_partitions", mode == "kafka" ? topic_partitions : 0},
      {"kafka", client_props},
      {"run", run},
      {"sagas", sagas},
      {"inflight", inflight},
      {"partitions", partitions},
      {"max_batch", max_batch},
      {"sync", sync},
      {"sagas_per_s", std::round(sagas / secs)},
      {"events_per_s", std::round(m.events_written / secs)},
      {"p50_ms", std::round(percentile(latencies, 0.50) * 1000) / 1000},
      {"p99_ms", std::round(percentile(latencies, 0.99) * 1000) / 1000},
      {"max_ms", std::round(percentile(latencies, 1.0) * 1000) / 1000},
      {"completed", completed},
      {"compensated", compensated},
      {"rss_mb", std::round(rss * 10) / 10},
      {"commits", m.commits},
      {"avg_batch", m.commits ? static_cast<double>(m.decisions_committed) / m.commits : 0},
      // Time in store.commit (write and fsync) per commit, and per decision.
      {"commit_ms", m.commits ? commit_ns.load() / 1e6 / m.commits : 0},
      {"commit_us_per_decision",
       m.decisions_committed ? commit_ns.load() / 1e3 / m.decisions_committed : 0},
      {"seconds", std::round(secs * 1000) / 1000},
      {"verified", ok}};
  if (!hop.empty()) out["hop_ms"] = hop;
  std::cout << out.dump() << std::endl;
  if (!ok)
    std::cerr << "verification failed: errors=" << errors << " not_released=" << not_released
              << " double_released=" << double_released
              << " released_unexpected=" << released_unexpected << " active=" << m.active << "\n";
  return ok ? 0 : 1;
}
