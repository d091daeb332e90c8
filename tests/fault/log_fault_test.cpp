// The saga log's disk fails under a running order system (SimDisk, the way SQLite tests itself):
// the Nth I/O call fails once, or from then on until the disk is mended or the process dies,
// with N swept over every call of a run; and the disk fills up. The engine must acknowledge
// nothing it did not commit, refuse new sagas with a clear error while it cannot write, carry
// on when the disk does, and lose no saga; every participant's ledger must stay consistent.
//
//   SAGA_FAULT_STRIDE=1 build/tests/fault/log_fault_test   sweeps every call (default: ~120
//   points spread over the run)
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "order_run.hpp"
#include "testutil/sim_disk.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using namespace std::chrono_literals;
using testutil::OrderRun;
using testutil::SimDisk;

constexpr int kSagas = 10;

std::string fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::path(testutil::temp_path("_")).parent_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

testutil::OrderRunOptions options(const std::string& dir, const SimDisk& disk) {
  testutil::OrderRunOptions o;
  o.dir = dir;
  o.log.vfs = disk.name();
  return o;
}

std::vector<std::string> ids(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("o" + std::to_string(i));
  return out;
}

void expect_consistent(const testutil::OrderSystemFiles& files, int n) {
  auto report = testutil::check_order_system(files, ids(n), testutil::order_declined);
  for (size_t i = 0; i < report.violations.size() && i < 10; ++i)
    ADD_FAILURE() << report.violations[i];
  EXPECT_EQ(report.completed + report.compensated, n) << report.summary();
}

// Every outcome a caller was told is in the log as told.
void expect_in_log(const testutil::OrderSystemFiles& files,
                   const std::map<std::string, SagaStatus>& told) {
  auto log = SqliteStore::open({.path = files.saga_log, .read_only = true});
  if (log.status().code() == Code::kNotFound) {  // killed before anything was committed
    EXPECT_TRUE(told.empty()) << log.status().to_string();
    return;
  }
  ASSERT_OK(log);
  for (const auto& [id, status] : told) {
    auto found = (*log)->find(id);
    ASSERT_OK(found);
    ASSERT_TRUE(found->has_value())
        << id << " was reported " << status_name(status) << " but is not in the log";
    EXPECT_EQ((*found)->status, status) << id;
  }
}

// The I/O calls of a clean run, and the calls to fail: every one with SAGA_FAULT_STRIDE=1.
std::vector<uint64_t> sweep_points(SimDisk& disk) {
  const std::string dir = fresh_dir("clean");
  const uint64_t before = disk.calls();
  {
    OrderRun run(options(dir, disk));
    EXPECT_OK(run.open());
    EXPECT_TRUE(run.run(kSagas, 20s));
    EXPECT_OK(run.close());
  }
  const uint64_t total = disk.calls() - before;
  const char* env = std::getenv("SAGA_FAULT_STRIDE");
  const uint64_t stride = env ? std::max(1, std::atoi(env)) : std::max<uint64_t>(1, total / 120);
  std::vector<uint64_t> out;
  for (uint64_t n = 1; n <= total + stride; n += stride) out.push_back(n);
  std::cout << "a clean run makes " << total << " I/O calls on the log; failing " << out.size()
            << " of them (stride " << stride << ")\n";
  return out;
}

// Waits until every saga has ended, or until the injected fault has held for a while.
void wait_until_ended_or_faulted(OrderRun& run, const SimDisk& disk, uint64_t injected_before) {
  auto faulted_at = std::chrono::steady_clock::time_point::max();
  for (int i = 0; i < 500; ++i) {
    if (run.wait(kSagas, 10ms)) return;
    if (disk.injected() > injected_before && faulted_at == faulted_at.max())
      faulted_at = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() - faulted_at > 40ms) return;
  }
}

TEST(LogFaults, AnIoCallFailingOnceAnywhereInARunLosesAndRepeatsNothing) {
  SimDisk disk("log-fault-once");
  int points = 0;
  for (uint64_t n : sweep_points(disk)) {
    SCOPED_TRACE("I/O call " + std::to_string(n) + " fails once");
    const std::string dir = fresh_dir("once");
    disk.fail_at(disk.calls() + n, false);
    OrderRun run(options(dir, disk));
    if (Status st = run.open(); !st.ok()) {
      EXPECT_NE(st.message(), "");
      ASSERT_OK(run.open());  // the fault has passed
    }
    ASSERT_TRUE(run.run(kSagas, 20s));
    ASSERT_OK(run.close());
    expect_consistent(run.files(), kSagas);
    if (HasFailure()) return;
    ++points;
  }
  std::cout << points << " runs, each with one failed I/O call\n";
}

TEST(LogFaults, AnIoCallFailingForGoodThenAKillAcknowledgesOnlyWhatWasCommitted) {
  SimDisk disk("log-fault-kill");
  int points = 0, told = 0;
  for (uint64_t n : sweep_points(disk)) {
    SCOPED_TRACE("I/O call " + std::to_string(n) + " and every later one fail, then a kill");
    const std::string dir = fresh_dir("kill");
    const uint64_t injected = disk.injected();
    disk.fail_at(disk.calls() + n, true);
    std::map<std::string, SagaStatus> first;
    {
      OrderRun life(options(dir, disk));
      if (life.open().ok()) {
        life.start(kSagas);
        wait_until_ended_or_faulted(life, disk, injected);
      }
      first = life.outcomes();
      life.crash();
    }
    disk.clear_faults();
    testutil::OrderSystemFiles files = testutil::OrderSystemFiles::in(dir);
    if (std::filesystem::exists(files.saga_log)) expect_in_log(files, first);
    if (HasFailure()) return;
    OrderRun second(options(dir, disk));
    ASSERT_OK(second.open());
    ASSERT_TRUE(second.run(kSagas, 20s));
    ASSERT_OK(second.close());
    for (const auto& [id, status] : first) EXPECT_EQ(second.outcomes()[id], status) << id;
    expect_consistent(files, kSagas);
    if (HasFailure()) return;
    told += static_cast<int>(first.size());
    ++points;
  }
  std::cout << points << " runs killed under a lasting fault; " << told
            << " outcomes told before the kill, all found in the log\n";
}

TEST(LogFaults, AnIoCallFailingUntilTheDiskIsMendedIsSurvivedInTheSameRun) {
  SimDisk disk("log-fault-mend");
  int points = 0, refused = 0;
  for (uint64_t n : sweep_points(disk)) {
    SCOPED_TRACE("I/O call " + std::to_string(n) + " and later ones fail until mended");
    const std::string dir = fresh_dir("mend");
    const uint64_t injected = disk.injected();
    disk.fail_at(disk.calls() + n, true);
    OrderRun run(options(dir, disk));
    if (Status st = run.open(); !st.ok()) {
      EXPECT_NE(st.message(), "");
      disk.clear_faults();
      ASSERT_OK(run.open());
    }
    run.start(kSagas);
    wait_until_ended_or_faulted(run, disk, injected);
    disk.clear_faults();
    ASSERT_TRUE(run.wait(kSagas, 20s));
    EXPECT_EQ(run.engine()->metrics().partitions_failing, 0u);
    ASSERT_OK(run.close());
    expect_consistent(run.files(), kSagas);
    if (HasFailure()) return;
    refused += static_cast<int>(run.refusals().size());
    ++points;
  }
  std::cout << points << " runs mended in flight; " << refused << " starts refused meanwhile\n";
}

TEST(LogFaults, AFullDiskRefusesNewSagasWithAClearErrorAndTheyRunOnceSpaceReturns) {
  SimDisk disk("log-full");
  const std::string dir = fresh_dir("full");
  OrderRun run(options(dir, disk));
  ASSERT_OK(run.open());
  ASSERT_TRUE(run.run(kSagas, 20s));

  disk.set_disk_full(true);
  // One new saga at a time: those a partition takes before its commit fails wait in memory,
  // unacknowledged; once it has failed, the partition refuses.
  for (int i = kSagas; i < 3 * kSagas; ++i) {
    run.start(i + 1, i);
    std::this_thread::sleep_for(15ms);
  }
  EXPECT_FALSE(run.wait(3 * kSagas, 100ms));
  EXPECT_EQ(run.outcomes().size(), static_cast<size_t>(kSagas)) << "nothing new is acknowledged";
  EXPECT_GT(run.engine()->metrics().partitions_failing, 0u);
  const auto refusals = run.refusals();
  ASSERT_FALSE(refusals.empty());
  for (const std::string& r : refusals) {
    EXPECT_NE(r.find("the saga log cannot be written"), std::string::npos) << r;
    EXPECT_NE(r.find("disk is full"), std::string::npos) << r;
  }

  disk.set_disk_full(false);
  ASSERT_TRUE(run.wait(3 * kSagas, 20s));
  EXPECT_EQ(run.engine()->metrics().partitions_failing, 0u);
  ASSERT_OK(run.close());
  expect_consistent(run.files(), 3 * kSagas);
}

}  // namespace
}  // namespace saga
