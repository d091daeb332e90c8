// Power loss: every file of the order system on a SimDisk that, when the power is cut, keeps
// only what was synced plus a random torn subset of the rest. With synchronous=FULL every
// outcome a caller was told and every decision acted on survives; with NORMAL the newest
// commits may be lost, each one whole.
//
//   SAGA_POWER_CYCLES=200 build/tests/fault/power_loss_test   (default 12)
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "order_run.hpp"
#include "saga/state_machine.hpp"
#include "testutil/sim_disk.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using namespace std::chrono_literals;
using testutil::OrderRun;
using testutil::SimDisk;

std::string fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::path(testutil::temp_path("_")).parent_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

// One saga's start, committed alone.
WriteBatch start_batch(const Definition& def, int i) {
  Decision d = saga::start(def, "s" + std::to_string(i), testutil::order_input(i), "", 7,
                           TimePoint(Duration(1000 + i)));
  WriteBatch b;
  b.sagas.push_back(
      SagaWrite{d.state, std::move(d.events), std::move(d.commands), std::move(d.timers), {}});
  return b;
}

TEST(PowerLoss, SimDiskLosesWhatWasNeverSyncedAndKeepsWhatWas) {
  SimDisk disk("power-sanity");
  const Definition def = testutil::ledger_order_definition();
  for (auto sync : {SqliteOptions::Sync::kOff, SqliteOptions::Sync::kFull}) {
    const std::string path = fresh_dir("sanity") + "/log.db";
    {
      auto store = SqliteStore::open({.path = path, .sync = sync, .vfs = disk.name()});
      ASSERT_OK(store);
      ASSERT_OK((*store)->commit(start_batch(def, 1)));
      disk.cut_power();
    }
    disk.restore_power(SimDisk::Loss::kDropUnsynced, 1);
    auto store = SqliteStore::open({.path = path});
    ASSERT_OK(store);
    auto found = (*store)->find("s1");
    ASSERT_OK(found);
    EXPECT_EQ(found->has_value(), sync == SqliteOptions::Sync::kFull);
  }
}

// The store alone: k single-saga commits, the power cut after the k-th, torn writes. FULL keeps
// all k; NORMAL keeps a prefix of them (the commits since the WAL was last synced, at a
// checkpoint, may go), never part of one.
TEST(PowerLoss, NormalSyncLosesOnlyTheNewestCommitsEachWholeAndFullLosesNone) {
  SimDisk disk("power-store");
  const Definition def = testutil::ledger_order_definition();
  testutil::SeededRandom rnd;
  for (auto sync : {SqliteOptions::Sync::kFull, SqliteOptions::Sync::kNormal}) {
    int told = 0, lost = 0;
    for (int trial = 0; trial < 6; ++trial) {
      const std::string path = fresh_dir("store") + "/log.db";
      const int k = rnd.uniform(1, 1500);
      {
        auto store = SqliteStore::open({.path = path, .sync = sync, .vfs = disk.name()});
        ASSERT_OK(store);
        for (int i = 0; i < k; ++i) ASSERT_OK((*store)->commit(start_batch(def, i)));
        disk.cut_power();
      }
      disk.restore_power(SimDisk::Loss::kTearUnsynced, rnd.engine()());
      int kept = 0;
      auto store = SqliteStore::open({.path = path});
      ASSERT_OK(store);
      for (int i = 0; i < k; ++i) {
        const std::string id = "s" + std::to_string(i);
        auto events = (*store)->events(id);
        ASSERT_OK(events);
        if (events->empty()) break;
        EXPECT_EQ(events->size(), start_batch(def, i).sagas[0].events.size()) << id;
        ++kept;
      }
      for (int i = kept; i < k; ++i) {  // nothing after the first lost commit
        auto found = (*store)->find("s" + std::to_string(i));
        ASSERT_OK(found);
        EXPECT_FALSE(found->has_value()) << "s" << i << " kept after an earlier commit was lost";
      }
      auto rec = (*store)->recover();
      ASSERT_OK(rec);
      EXPECT_EQ(rec->active.size(), static_cast<size_t>(kept));
      if (sync == SqliteOptions::Sync::kFull) {
        EXPECT_EQ(kept, k);
      }
      told += k;
      lost += k - kept;
    }
    std::cout << (sync == SqliteOptions::Sync::kFull ? "FULL" : "NORMAL") << ": " << told
              << " commits acknowledged, " << lost << " lost to power cuts\n";
  }
}

// The whole order system, every file on the disk that loses power at a random moment.
TEST(PowerLoss, FullSyncKeepsEveryToldOutcomeAndLeavesEveryLedgerConsistent) {
  SimDisk disk("power-system");
  testutil::SeededRandom rnd;
  const int cycles = env_int("SAGA_POWER_CYCLES", 12);
  constexpr int kSagas = 40;
  int told = 0;
  for (int c = 0; c < cycles; ++c) {
    SCOPED_TRACE("cycle " + std::to_string(c));
    testutil::OrderRunOptions o;
    o.dir = fresh_dir("system");
    o.log.vfs = o.ledgers.vfs = disk.name();
    std::map<std::string, SagaStatus> first;
    {
      OrderRun life(o);
      ASSERT_OK(life.open());
      life.start(kSagas);
      std::this_thread::sleep_for(std::chrono::milliseconds(rnd.uniform(0, 150)));
      disk.cut_power();
      std::this_thread::sleep_for(20ms);  // what still happens now reaches no disk
      first = life.outcomes();
      life.crash();
    }
    disk.restore_power(SimDisk::Loss::kTearUnsynced, rnd.engine()());
    OrderRun second(o);
    ASSERT_OK(second.open());
    ASSERT_TRUE(second.run(kSagas, 30s));
    ASSERT_OK(second.close());
    for (const auto& [id, status] : first)
      EXPECT_EQ(second.outcomes()[id], status) << id << " was told " << status_name(status);
    std::vector<std::string> ids;
    for (int i = 0; i < kSagas; ++i) ids.push_back("o" + std::to_string(i));
    auto report = testutil::check_order_system(second.files(), ids, testutil::order_declined);
    for (size_t i = 0; i < report.violations.size() && i < 10; ++i)
      ADD_FAILURE() << report.violations[i];
    if (HasFailure()) return;
    told += static_cast<int>(first.size());
  }
  std::cout << cycles << " power cuts; " << told
            << " outcomes told before them, all kept; every ledger consistent\n";
}

}  // namespace
}  // namespace saga
