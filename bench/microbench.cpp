// Micro-benchmarks of the pure core and the commit path, sweeping their arguments.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "saga/memory.hpp"
#include "saga/sqlite_store.hpp"
#include "saga/state_machine.hpp"

using namespace saga;

namespace {

Definition def() {
  return Definition::Builder("PlaceOrder")
      .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
      .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
      .step("confirm_order", "orders.ConfirmOrder")
      .retry({RetryPolicy::kForever})
      .build()
      .value();
}

Input ok_reply(const std::string& id, const std::string& data = "{}") {
  Input in;
  in.reply = Reply{id, ReplyOutcome::kOk, data, ""};
  return in;
}

// One saga from start to completed: start + three replies.
void BM_DecideWholeSaga(benchmark::State& st) {
  const Definition d = def();
  const TimePoint now = from_ms(1'700'000'000'000);
  for (auto _ : st) {
    Decision x = start(d, "order-1", R"({"order_id":"o1","amount":10})", "", 1, now);
    x = decide(d, x.state, ok_reply("order-1/reserve_inventory/a1", R"({"reservation_id":"r1"})"),
               now);
    x = decide(d, x.state, ok_reply("order-1/charge_payment/a1"), now);
    x = decide(d, x.state, ok_reply("order-1/confirm_order/a1"), now);
    benchmark::DoNotOptimize(x.state.status);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_DecideWholeSaga);

// Replay of a log of N events (a saga whose first step is retried a lot).
void BM_Replay(benchmark::State& st) {
  const Definition d = Definition::Builder("Retrying")
                           .default_retry({RetryPolicy::kForever})
                           .step("reserve_inventory", "inventory.ReserveItems", "inventory.Release")
                           .build()
                           .value();
  const TimePoint now = from_ms(1'700'000'000'000);
  Decision x = start(d, "s", "{}", "", 1, now);
  std::vector<Event> log = x.events;
  SagaState s = x.state;
  int attempt = 1;
  while (static_cast<int64_t>(log.size()) < st.range(0)) {
    Input fail;
    fail.reply =
        Reply{command_id("s", "reserve_inventory", false, attempt), ReplyOutcome::kFailed, "", "x"};
    Decision f = decide(d, s, fail, now);
    Input timer;
    timer.kind = Input::Kind::kTimer;
    timer.timer = f.timers.empty() ? Timer{} : f.timers.back();
    Decision r = decide(d, f.state, timer, now);
    log.insert(log.end(), f.events.begin(), f.events.end());
    log.insert(log.end(), r.events.begin(), r.events.end());
    s = r.state;
    ++attempt;
    if (f.events.empty()) break;
  }
  for (auto _ : st) benchmark::DoNotOptimize(replay("s", log));
  st.SetItemsProcessed(st.iterations() * log.size());
}
BENCHMARK(BM_Replay)->Arg(8)->Arg(64)->Arg(512);

WriteBatch make_batch(int sagas, int round) {
  const Definition d = def();
  WriteBatch b;
  for (int i = 0; i < sagas; ++i) {
    Decision x =
        start(d, "s" + std::to_string(round) + "-" + std::to_string(i), "{}", "", 1, from_ms(1));
    b.sagas.push_back({x.state, x.events, x.commands, x.timers, {}});
  }
  return b;
}

// Group commit on SQLite with synchronous=FULL: one transaction per batch of N sagas.
void BM_SqliteCommitBatch(benchmark::State& st) {
  const std::string path = (std::filesystem::temp_directory_path() / "saga-microbench.db").string();
  for (const char* s : {"", "-wal", "-shm"}) std::filesystem::remove(path + s);
  auto store = SqliteStore::open({.path = path});
  int round = 0;
  int64_t events = 0;
  for (auto _ : st) {
    st.PauseTiming();
    WriteBatch b = make_batch(static_cast<int>(st.range(0)), round++);
    for (const auto& w : b.sagas) events += w.events.size();
    st.ResumeTiming();
    if (!(*store)->commit(b).ok()) st.SkipWithError("commit failed");
  }
  st.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SqliteCommitBatch)->Arg(1)->Arg(16)->Arg(64)->Arg(256)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
