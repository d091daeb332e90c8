// saga-bench: the reference workload (README "Benchmark"). Embedded mode: SQLite event log
// (synchronous=FULL unless told otherwise), in-memory transport, participants in-process doing
// a map update. Verifies the end counts and prints one JSON line per run.
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

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "saga/sqlite_store.hpp"

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

// The participants: trivial map updates, so the figure measures orchestration.
struct World {
  std::mutex mu;
  std::map<std::string, int> reserved, released;
  std::set<std::string> charged, confirmed;
  // The workload's participants do in-memory work, so their record is the in-memory double.
  testing::VolatileParticipantStore inventory_record, payment_record, orders_record;
  Participant inventory, payment, orders;

  explicit World(Transport& t)
      : inventory(t, "inventory", inventory_record),
        payment(t, "payment", payment_record),
        orders(t, "orders", orders_record) {
    inventory.on("ReserveItems", [this](const CommandContext& c) {
      std::lock_guard l(mu);
      reserved[c.saga_id]++;
      return ParticipantReply::ok(R"({"reservation_id":"r-)" + c.saga_id + "\"}");
    });
    inventory.on_compensate("ReleaseReservation", [this](const CommandContext& c) {
      std::lock_guard l(mu);
      released[c.saga_id]++;
      return ParticipantReply::ok();
    });
    payment.on("ChargeCard", [this](const CommandContext& c) {
      if (c.payload.find("\"fail\":true") != std::string::npos)
        return ParticipantReply::rejected("card declined");
      std::lock_guard l(mu);
      charged.insert(c.saga_id);
      return ParticipantReply::ok();
    });
    payment.on_compensate("RefundPayment",
                          [](const CommandContext&) { return ParticipantReply::ok(); });
    orders.on("ConfirmOrder", [this](const CommandContext& c) {
      std::lock_guard l(mu);
      confirmed.insert(c.saga_id);
      return ParticipantReply::ok();
    });
  }
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
  app.add_option("--mode", mode, "embedded (kafka comes with the Kafka transport)")
      ->check(CLI::IsMember({"embedded"}));
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
  app.add_flag("--overwrite", overwrite, "Replace the --db file if it exists");
  CLI11_PARSE(app, argc, argv);
  if (sagas == 0) sagas = run == "throughput" ? 50000 : 2000;
  if (inflight == 0) inflight = run == "throughput" ? 64 : 1;

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
  MemoryTransport bus;
  World world(bus);
  for (Participant* p : {&world.inventory, &world.payment, &world.orders}) (void)p->start();
  SystemClock clock;
  EngineOptions opts;
  opts.definitions = {place_order()};
  opts.partitions = partitions;
  opts.max_batch = static_cast<size_t>(max_batch);
  auto engine = Engine::open(opts, **store, bus, clock);
  if (!engine.ok()) {
    std::cerr << engine.status().to_string() << "\n";
    return 1;
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
      {"seconds", std::round(secs * 1000) / 1000},
      {"verified", ok}};
  std::cout << out.dump() << std::endl;
  if (!ok)
    std::cerr << "verification failed: errors=" << errors << " not_released=" << not_released
              << " double_released=" << double_released
              << " released_unexpected=" << released_unexpected << " active=" << m.active << "\n";
  return ok ? 0 : 1;
}
