// SqliteStore on real files: durability, atomicity, idempotence, recovery, migrations, and the
// snapshot codec. A second raw sqlite3 connection plays the other process and the inspector.
#include "saga/sqlite_store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "testutil/testutil.hpp"

namespace saga {
namespace {

using testutil::temp_path;

// The DDL of schema version 1, as an older build wrote it.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE events(
  saga_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, step INTEGER NOT NULL,
  attempt INTEGER NOT NULL, compensation INTEGER NOT NULL, at_ms INTEGER NOT NULL,
  value INTEGER NOT NULL, detail TEXT NOT NULL, data TEXT NOT NULL, trace TEXT NOT NULL,
  PRIMARY KEY(saga_id, seq));
CREATE TABLE saga_state(
  saga_id TEXT PRIMARY KEY NOT NULL, definition TEXT NOT NULL, version INTEGER NOT NULL,
  status TEXT NOT NULL, input TEXT NOT NULL, reason TEXT NOT NULL, started_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL, events INTEGER NOT NULL, snapshot BLOB);
CREATE TABLE outbox(
  id INTEGER PRIMARY KEY, command_id TEXT NOT NULL UNIQUE, saga_id TEXT NOT NULL,
  participant TEXT NOT NULL, type TEXT NOT NULL, compensation INTEGER NOT NULL,
  payload TEXT NOT NULL, trace TEXT NOT NULL);
CREATE TABLE timers(
  timer_id TEXT PRIMARY KEY NOT NULL, saga_id TEXT NOT NULL, due_ms INTEGER NOT NULL,
  kind TEXT NOT NULL, step INTEGER NOT NULL, attempt INTEGER NOT NULL,
  compensation INTEGER NOT NULL) WITHOUT ROWID;
)sql";

// A plain connection to the same file, as the sqlite3 CLI or another process would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
  }
  // Every row, its columns joined by '|' (NULL as "NULL").
  std::vector<std::string> rows(const std::string& sql) {
    std::vector<std::string> out;
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
    while (s && sqlite3_step(s) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        if (i > 0) row += '|';
        const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
        row += t ? t : "NULL";
      }
      out.push_back(row);
    }
    sqlite3_finalize(s);
    return out;
  }
  std::string value(const std::string& sql) {
    auto r = rows(sql);
    return r.empty() ? "" : r[0];
  }
  // Everything the store wrote, for before/after comparisons.
  std::vector<std::string> dump() {
    std::vector<std::string> all;
    for (const char* sql :
         {"SELECT * FROM events ORDER BY saga_id, seq",
          "SELECT saga_id, definition, version, status, input, reason, started_ms, updated_ms, "
          "events, hex(snapshot), hex(pending) FROM saga_state ORDER BY saga_id"}) {
      for (auto& r : rows(sql)) all.push_back(r);
    }
    return all;
  }

 private:
  sqlite3* db_ = nullptr;
};

SqliteOptions options_for(const std::string& path) {
  SqliteOptions o;
  o.path = path;
  return o;
}

std::unique_ptr<SqliteStore> open_store(const SqliteOptions& options) {
  auto r = SqliteStore::open(options);
  if (!r.ok()) {
    ADD_FAILURE() << "open " << options.path << ": " << r.status().to_string();
    return nullptr;
  }
  return std::move(r).value();
}

SagaState state_of(const std::string& id, SagaStatus status, uint32_t seq) {
  SagaState s;
  s.id = id;
  s.definition = "order";
  s.version = 2;
  s.seed = 42;
  s.input = R"({"order":7})";
  s.context = R"({"order":7,"reservation":"r-1"})";
  s.trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  s.status = status;
  s.steps = {{StepPhase::kSucceeded, 1, 0, false, ""},
             {StepPhase::kRunning, 2, 0, true, "timed out", "no subscriber for channel 'x'"}};
  s.seq = seq;
  s.started_at = from_ms(1'700'000'000'000);
  s.updated_at = from_ms(1'700'000'000'000 + seq);
  if (status == SagaStatus::kStuck) {
    s.reason = "refund failed";
    s.failure = "card declined";
  }
  return s;
}

Event event_of(uint32_t seq) {
  Event e;
  e.type = seq == 1 ? EventType::kSagaStarted : EventType::kStepDispatched;
  e.seq = seq;
  e.at = from_ms(1'700'000'000'000 + seq);
  e.step = seq == 1 ? -1 : 0;
  e.attempt = 1;
  e.value = seq * 10;
  e.detail = seq == 1 ? "order" : "";
  e.data = seq == 1 ? R"({"order":7})" : "";
  e.trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  return e;
}

Command command_of(const std::string& saga, int attempt) {
  return {saga + "/reserve/a" + std::to_string(attempt),
          saga,
          "inventory",
          "ReserveItems",
          false,
          R"({"order":7})",
          "00-trace"};
}

Timer timer_of(const std::string& saga, int attempt) {
  return {saga + "/reserve/a" + std::to_string(attempt) + "#t",
          saga,
          from_ms(1'700'000'030'000),
          TimerKind::kTimeout,
          0,
          attempt,
          false};
}

// Events first..last of one saga, with the command and timeout of attempt `last`.
SagaWrite write_of(const std::string& id, uint32_t first, uint32_t last,
                   SagaStatus status = SagaStatus::kRunning) {
  SagaWrite w;
  w.state = state_of(id, status, last);
  for (uint32_t seq = first; seq <= last; ++seq) w.events.push_back(event_of(seq));
  w.outbox.push_back(command_of(id, static_cast<int>(last)));
  w.timers.push_back(timer_of(id, static_cast<int>(last)));
  return w;
}

// The first write of `batch` settles the command of `earlier`'s first write and cancels its timer,
// as the engine's next decision for that saga does.
void settle_first(WriteBatch* batch, const WriteBatch& earlier) {
  const SagaWrite& e = earlier.sagas[0];
  batch->sagas[0].cancel_timers.push_back(e.timers[0].id);
  batch->sent.push_back({e.state.id, e.outbox[0].id});
}

std::vector<Event> events_of(const SagaWrite& w) {
  return w.events;
}

// Each saga's commands in the order it wrote them (sagas in no promised order).
std::vector<Command> commands_of(const std::vector<Command>& all, const std::string& saga) {
  std::vector<Command> out;
  for (const Command& c : all) {
    if (c.saga_id == saga) out.push_back(c);
  }
  return out;
}

TEST(SqliteStore, BatchIsAllThereAfterReopen) {
  const std::string path = temp_path("store.db");
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 3), write_of("b", 1, 2)};
  {
    auto store = open_store(options_for(path));
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->commit(batch));
  }
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  auto rec = store->recover();
  ASSERT_OK(rec);
  ASSERT_EQ(rec->active.size(), 2u);
  const SagaState& first = rec->active[0].id == "a" ? rec->active[0] : rec->active[1];
  const SagaState& second = rec->active[0].id == "a" ? rec->active[1] : rec->active[0];
  EXPECT_EQ(first, batch.sagas[0].state);
  EXPECT_EQ(second, batch.sagas[1].state);
  EXPECT_EQ(rec->outbox,
            (std::vector<Command>{batch.sagas[0].outbox[0], batch.sagas[1].outbox[0]}));
  ASSERT_EQ(rec->timers.size(), 2u);
  EXPECT_EQ(rec->timers[0], batch.sagas[0].timers[0]);
  EXPECT_EQ(rec->timers[1], batch.sagas[1].timers[0]);
  auto events = store->events("a");
  ASSERT_OK(events);
  EXPECT_EQ(*events, events_of(batch.sagas[0]));
}

TEST(SqliteStore, SecondWriterIsRefusedWhileReadersKeepWorking) {
  const std::string path = temp_path("one-writer.db");
  auto first = SqliteStore::open({.path = path});
  ASSERT_OK(first);
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 2)};
  ASSERT_OK((*first)->commit(batch));

  auto second = SqliteStore::open({.path = path});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("already open for writing by process " +
                                           std::to_string(getpid())),
            std::string::npos)
      << second.status().to_string();

  auto reader = SqliteStore::open({.path = path, .read_only = true});
  ASSERT_OK(reader);
  EXPECT_EQ((*reader)->events("a").value().size(), 2u);

  first->reset();  // the writer goes away: the next one may open
  EXPECT_OK(SqliteStore::open({.path = path}));
}

// The lock follows the file, not the spelling of its name.
TEST(SqliteStore, SecondWriterNamingTheFileAnotherWayIsRefused) {
  const std::string path = temp_path("spelled.db");
  const std::string link = temp_path("spelled-link.db");
  auto first = SqliteStore::open({.path = "file:" + path});
  ASSERT_OK(first);
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  for (const std::string& other : {path, link, "file:" + path + "?cache=private"}) {
    auto second = SqliteStore::open({.path = other});
    ASSERT_FALSE(second.ok()) << other;
    EXPECT_EQ(second.status().code(), Code::kFailedPrecondition) << other;
  }
  first->reset();
  auto plain = SqliteStore::open({.path = path});
  ASSERT_OK(plain);
  EXPECT_FALSE(SqliteStore::open({.path = "file:" + path}).ok());
  plain->reset();
  // A build before this one locked only the name it was given: a writer of that kind holding
  // the link's lock keeps this one out too.
  const int older = ::open((link + ".lock").c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(older, 0);
  ASSERT_EQ(::flock(older, LOCK_EX | LOCK_NB), 0);
  EXPECT_FALSE(SqliteStore::open({.path = link}).ok());
  ::close(older);
  EXPECT_OK(SqliteStore::open({.path = link}));
  // A database in memory has no file to share, and no lock.
  EXPECT_OK(SqliteStore::open({.path = "file::memory:"}));
  EXPECT_OK(SqliteStore::open({.path = ":memory:"}));
  const std::string memdb = temp_path("memdb");
  std::filesystem::remove(memdb + ".lock");
  EXPECT_OK(SqliteStore::open({.path = "file:" + memdb + "?vfs=memdb"}));
  EXPECT_FALSE(std::filesystem::exists(memdb + ".lock"));
}

TEST(SqliteStore, SecondWriterInAnotherProcessIsRefused) {
  const std::string path = temp_path("two-processes.db");
  auto first = SqliteStore::open({.path = path});
  ASSERT_OK(first);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto other = SqliteStore::open({.path = path});
    _exit(!other.ok() && other.status().code() == Code::kFailedPrecondition ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// sagactl after a crash: the writer died with its WAL (and, after a reboot, no -shm); a read-only
// connection alone cannot index it. Before, the reader failed with "attempt to write a readonly
// database".
TEST(SqliteStore, ReaderOpensTheLogOfAWriterThatDiedAndSeesWhatItCommitted) {
  const std::string path = temp_path("died.db");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = SqliteStore::open({.path = path});
    WriteBatch batch;
    batch.sagas = {write_of("a", 1, 3)};
    _exit(store.ok() && (*store)->commit(batch).ok() ? 0 : 1);  // no close: like a kill
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::filesystem::remove(path + "-shm");  // a reboot
  ASSERT_TRUE(std::filesystem::exists(path + "-wal"));

  auto reader = SqliteStore::open({.path = path, .read_only = true});
  ASSERT_OK(reader);
  EXPECT_EQ((*reader)->events("a").value().size(), 3u);
  EXPECT_FALSE((*reader)->commit(WriteBatch{{write_of("b", 1, 1)}, {}}).ok());
  reader->reset();
  EXPECT_TRUE(std::filesystem::exists(path + "-wal")) << "the reader checkpointed the log";
}

// A writer killed inside its first transaction, before the log switched to WAL, leaves a hot
// rollback journal. Before, a reader failed with "attempt to write a readonly database".
TEST(SqliteStore, ReaderRollsBackTheHotJournalOfAWriterKilledInItsFirstTransaction) {
  const std::string path = temp_path("hot-journal.db");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db,
                 "PRAGMA cache_size=2; BEGIN; CREATE TABLE big(v); WITH RECURSIVE n(i) AS "
                 "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
                 "INSERT INTO big SELECT randomblob(1000) FROM n;",
                 nullptr, nullptr, nullptr);
    _exit(0);  // mid-transaction, pages spilled to the file: like a kill
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(std::filesystem::exists(path + "-journal"));

  auto reader = SqliteStore::open({.path = path, .read_only = true});
  EXPECT_EQ(reader.status().code(), Code::kNotFound) << reader.status().to_string();
}

TEST(SqliteStore, ReaderOfAnEmptyFileIsToldThereIsNoLogInItYet) {
  const std::string path = temp_path("empty.db");
  { std::ofstream touch(path); }
  auto reader = SqliteStore::open({.path = path, .read_only = true});
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kNotFound);
  EXPECT_NE(reader.status().message().find("no saga log in it yet"), std::string::npos)
      << reader.status().to_string();
}

TEST(SqliteStore, ForeignDatabaseIsRefusedNotMigrated) {
  const std::string path = temp_path("customers.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE customers(id INTEGER)", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = SqliteStore::open({.path = path});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a saga log"), std::string::npos)
      << store.status().to_string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &s, nullptr);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(s, 0), 1);  // only the customers table
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST(SqliteStore, CommitWhoseEventsContradictTheLogIsRefusedWhole) {
  const std::string path = temp_path("contradiction.db");
  auto store = SqliteStore::open({.path = path});
  ASSERT_OK(store);
  WriteBatch first;
  first.sagas = {write_of("a", 1, 2)};
  ASSERT_OK((*store)->commit(first));

  WriteBatch other;  // another writer's idea of the same saga, and an innocent bystander
  other.sagas = {write_of("a", 1, 3), write_of("b", 1, 1)};
  other.sagas[0].events[1].detail = "decided elsewhere";
  Status st = (*store)->commit(other);
  EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.to_string();
  EXPECT_NE(st.message().find("differs from the one already in the log"), std::string::npos);
  EXPECT_EQ((*store)->events("a").value().size(), 2u);
  EXPECT_EQ((*store)->find("a").value()->events, 2u);
  EXPECT_FALSE((*store)->find("b").value().has_value());
  ASSERT_OK((*store)->commit(first));  // the same batch again is still fine
}

TEST(SqliteStore, FileUsesWalAndTablesAreReadableWithPlainSql) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 3)};
  ASSERT_OK(store->commit(batch));

  RawDb raw(path);
  EXPECT_EQ(raw.value("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.rows("SELECT seq, type FROM events WHERE saga_id = 'a' ORDER BY seq"),
            (std::vector<std::string>{"1|SagaStarted", "2|StepDispatched", "3|StepDispatched"}));
  EXPECT_EQ(raw.value("SELECT definition, version, status, events FROM saga_state"),
            "order|2|running|3");
  // What it has in flight is binary, next to its snapshot; a finished saga keeps neither.
  EXPECT_EQ(raw.value("SELECT typeof(snapshot), typeof(pending) FROM saga_state"), "blob|blob");
}

TEST(SqliteStore, CommitBlockedByAnotherWriterIsRetriableAndWritesNothing) {
  const std::string path = temp_path("store.db");
  SqliteOptions options = options_for(path);
  options.busy_timeout_ms = 50;
  auto store = open_store(options);
  ASSERT_NE(store, nullptr);
  WriteBatch before;
  before.sagas = {write_of("a", 1, 2)};
  ASSERT_OK(store->commit(before));

  WriteBatch batch;
  batch.sagas = {write_of("a", 3, 4), write_of("b", 1, 1)};
  settle_first(&batch, before);

  RawDb other(path);
  other.exec("BEGIN IMMEDIATE");
  Status st = store->commit(batch);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.retriable()) << st.to_string();
  other.exec("ROLLBACK");

  RawDb after(path);
  const std::vector<std::string> only_before = after.dump();
  auto rec = store->recover();
  ASSERT_OK(rec);
  ASSERT_EQ(rec->active.size(), 1u);
  EXPECT_EQ(rec->active[0], before.sagas[0].state);
  EXPECT_EQ(rec->outbox, before.sagas[0].outbox);
  EXPECT_EQ(rec->timers, before.sagas[0].timers);
  EXPECT_EQ(store->events("a")->size(), 2u);
  EXPECT_EQ(*store->find("b"), std::nullopt);

  ASSERT_OK(store->commit(batch));
  EXPECT_NE(after.dump(), only_before);
  EXPECT_EQ(store->events("a")->size(), 4u);
  EXPECT_EQ(store->events("b")->size(), 1u);
  rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(rec->outbox.size(), 2u);
  EXPECT_EQ(rec->timers.size(), 2u);
}

// The engine commits on one thread while its partition looks sagas up on another: reads go
// through a second connection and never wait behind a commit.
TEST(SqliteStore, ReadsDoNotWaitForACommitInProgressAndSeeItOnceDone) {
  const std::string path = temp_path("store.db");
  SqliteOptions options = options_for(path);
  options.busy_timeout_ms = 5000;
  auto store = open_store(options);
  ASSERT_NE(store, nullptr);
  WriteBatch before;
  before.sagas = {write_of("a", 1, 2)};
  ASSERT_OK(store->commit(before));

  RawDb other(path);
  other.exec("BEGIN IMMEDIATE");  // the commit below waits for this lock, holding the store
  std::atomic<bool> done{false};
  Status committed;
  std::thread writer([&] {
    WriteBatch batch;
    batch.sagas = {write_of("b", 1, 1)};
    committed = store->commit(batch);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done.load());
  const auto t0 = std::chrono::steady_clock::now();
  auto a = store->find("a");
  auto events = store->events("a");
  auto b = store->find("b");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(done.load());  // answered while the commit still waits
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_TRUE(a.ok() && a->has_value());
  EXPECT_TRUE(events.ok() && events->size() == 2u);
  EXPECT_TRUE(b.ok() && !b->has_value());

  other.exec("ROLLBACK");  // no ASSERT before the join: the thread must be joined
  writer.join();
  ASSERT_OK(committed);
  b = store->find("b");
  ASSERT_OK(b);
  EXPECT_TRUE(b->has_value());
  EXPECT_EQ(store->events("b")->size(), 1u);
}

TEST(SqliteStore, CommitFailingHalfwayRollsBackTheWholeBatch) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 2), write_of("b", 1, 2)};
  {
    RawDb raw(path);
    raw.exec(
        "CREATE TRIGGER fail_b BEFORE INSERT ON saga_state WHEN NEW.saga_id = 'b' "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  }
  Status st = store->commit(batch);
  EXPECT_EQ(st.code(), Code::kInternal) << st.to_string();
  EXPECT_NE(st.message().find("injected failure"), std::string::npos) << st.message();
  EXPECT_FALSE(st.retriable());

  RawDb raw(path);
  EXPECT_TRUE(raw.dump().empty());
  raw.exec("DROP TRIGGER fail_b");
  ASSERT_OK(store->commit(batch));
  EXPECT_EQ(raw.value("SELECT count(*) FROM events"), "4");
}

// A log file is data, never code: a trigger planted in it that tries to load a library is
// refused (SQLite refuses load_extension in triggers whatever the connection allows; the
// store also turns the C API's extension loading off), the commit fails cleanly, and the store
// goes on once the trigger is gone.
TEST(SqliteStore, ATriggerInTheFileCannotLoadAnExtension) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  {
    RawDb raw(path);
    raw.exec(
        "CREATE TRIGGER load_code BEFORE INSERT ON saga_state "
        "BEGIN SELECT load_extension('/nonexistent/evil.so'); END");
  }
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 2)};
  Status st = store->commit(batch);
  EXPECT_FALSE(st.ok());
  // Refused before any file is looked for (a missing library would say "cannot open").
  EXPECT_TRUE(st.message().find("unsafe use of load_extension") != std::string::npos ||
              st.message().find("not authorized") != std::string::npos)
      << st.message();
  RawDb raw(path);
  raw.exec("DROP TRIGGER load_code");
  ASSERT_OK(store->commit(batch));
}

// The store keeps what each saga has pending in memory between commits; a failed commit must
// not leave that copy ahead of the log.
TEST(SqliteStore, CommitFailingHalfwayLeavesPendingCommandsAsLastCommitted) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch first;
  first.sagas = {write_of("a", 1, 2)};
  ASSERT_OK(store->commit(first));

  WriteBatch next;
  next.sagas = {write_of("a", 3, 3), write_of("b", 1, 1)};
  settle_first(&next, first);
  RawDb raw(path);
  raw.exec(
      "CREATE TRIGGER fail_b BEFORE INSERT ON saga_state WHEN NEW.saga_id = 'b' "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  EXPECT_FALSE(store->commit(next).ok());
  auto rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(rec->outbox, first.sagas[0].outbox);
  EXPECT_EQ(rec->timers, first.sagas[0].timers);

  raw.exec("DROP TRIGGER fail_b");
  ASSERT_OK(store->commit(next));
  WriteBatch last;
  last.sagas = {write_of("a", 4, 4)};
  settle_first(&last, next);
  ASSERT_OK(store->commit(last));
  rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(commands_of(rec->outbox, "a"), last.sagas[0].outbox);
  EXPECT_EQ(commands_of(rec->outbox, "b"), next.sagas[1].outbox);
  EXPECT_EQ(rec->timers, (std::vector<Timer>{last.sagas[0].timers[0], next.sagas[1].timers[0]}));
}

TEST(SqliteStore, RecommittingSameBatchChangesNothing) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch first;
  first.sagas = {write_of("a", 1, 2)};
  ASSERT_OK(store->commit(first));

  WriteBatch batch;
  batch.sagas = {write_of("a", 3, 4), write_of("b", 1, 3),
                 write_of("c", 1, 5, SagaStatus::kCompleted)};
  settle_first(&batch, first);
  ASSERT_OK(store->commit(batch));
  RawDb raw(path);
  const std::vector<std::string> once = raw.dump();
  ASSERT_OK(store->commit(batch));
  EXPECT_EQ(raw.dump(), once);
  EXPECT_EQ(raw.value("SELECT count(*) FROM events"), "12");
  // A finished saga keeps nothing pending.
  auto rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(rec->outbox,
            (std::vector<Command>{batch.sagas[0].outbox[0], batch.sagas[1].outbox[0]}));
  EXPECT_EQ(rec->timers, (std::vector<Timer>{batch.sagas[0].timers[0], batch.sagas[1].timers[0]}));
}

TEST(SqliteStore, RecommittingAnOlderBatchKeepsTheNewerSnapshot) {
  auto store = open_store(options_for(temp_path("store.db")));
  ASSERT_NE(store, nullptr);
  WriteBatch older, newer;
  older.sagas = {write_of("a", 1, 2)};
  newer.sagas = {write_of("a", 3, 4)};
  settle_first(&newer, older);
  ASSERT_OK(store->commit(older));
  ASSERT_OK(store->commit(newer));
  ASSERT_OK(store->commit(older));
  auto rec = store->recover();
  ASSERT_OK(rec);
  ASSERT_EQ(rec->active.size(), 1u);
  EXPECT_EQ(rec->active[0].seq, 4u);
  // Nor do its command and timer come back.
  EXPECT_EQ(rec->outbox, newer.sagas[0].outbox);
  EXPECT_EQ(rec->timers, newer.sagas[0].timers);
  EXPECT_EQ((*store->find("a"))->events, 4u);
  EXPECT_EQ(store->events("a")->size(), 4u);
  // The saga goes on from the newer state.
  WriteBatch next;
  next.sagas = {write_of("a", 5, 5)};
  next.sent = {{"a", newer.sagas[0].outbox[0].id}};
  ASSERT_OK(store->commit(next));
  rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(rec->outbox, next.sagas[0].outbox);
  EXPECT_EQ(rec->timers, (std::vector<Timer>{newer.sagas[0].timers[0], next.sagas[0].timers[0]}));
}

TEST(SqliteStore, RecoverReturnsOnlyActiveSagasAndKeepsStuckOnes) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch start;
  for (const char* id :
       {"running", "compensating", "stuck", "completed", "compensated", "aborted"}) {
    start.sagas.push_back(write_of(id, 1, 2));
  }
  ASSERT_OK(store->commit(start));
  WriteBatch settle;
  settle.sagas = {write_of("compensating", 3, 3, SagaStatus::kCompensating),
                  write_of("stuck", 3, 3, SagaStatus::kStuck),
                  write_of("completed", 3, 3, SagaStatus::kCompleted),
                  write_of("compensated", 3, 3, SagaStatus::kCompensated),
                  write_of("aborted", 3, 3, SagaStatus::kAborted)};
  ASSERT_OK(store->commit(settle));

  auto rec = store->recover();
  ASSERT_OK(rec);
  std::vector<std::string> ids;
  for (const SagaState& s : rec->active) ids.push_back(s.id);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"compensating", "running", "stuck"}));
  for (const SagaState& s : rec->active) {
    if (s.id == "stuck") {
      EXPECT_EQ(s, settle.sagas[1].state);
    }
  }
  RawDb raw(path);
  EXPECT_EQ(raw.rows("SELECT saga_id FROM saga_state WHERE snapshot IS NULL ORDER BY saga_id"),
            (std::vector<std::string>{"aborted", "compensated", "completed"}));
  EXPECT_EQ(raw.value("SELECT count(*) FROM events"), "17");
  // Their events (a dispatch) do not change a status, yet each status did: the update that
  // keeps the status found it changed and gave way to the full one.
  EXPECT_EQ(raw.rows("SELECT saga_id || ' ' || status FROM saga_state ORDER BY saga_id"),
            (std::vector<std::string>{"aborted aborted", "compensated compensated",
                                      "compensating compensating", "completed completed",
                                      "running running", "stuck stuck"}));
}

TEST(SqliteStore, OutboxCommandsStayInTheOrderEachSagaWroteThemUntilSettled) {
  auto store = open_store(options_for(temp_path("store.db")));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("z", 1, 1), write_of("m", 1, 1), write_of("a", 1, 1)};
  batch.sagas[1].outbox.push_back(command_of("m", 9));
  batch.sagas[1].outbox.insert(batch.sagas[1].outbox.begin(), command_of("m", 5));
  ASSERT_OK(store->commit(batch));
  auto rec = store->recover();
  ASSERT_OK(rec);
  ASSERT_EQ(rec->outbox.size(), 5u);
  for (const SagaWrite& w : batch.sagas) {
    EXPECT_EQ(commands_of(rec->outbox, w.state.id), w.outbox) << w.state.id;
  }

  // Settled in a batch that writes nothing else for them; unknown ids change nothing.
  WriteBatch acked;
  acked.sent = {{"z", batch.sagas[0].outbox[0].id},
                {"m", batch.sagas[1].outbox[1].id},
                {"a", "never-existed"},
                {"nobody", "never-existed"}};
  ASSERT_OK(store->commit(acked));
  rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(commands_of(rec->outbox, "z"), std::vector<Command>{});
  EXPECT_EQ(commands_of(rec->outbox, "m"),
            (std::vector<Command>{batch.sagas[1].outbox[0], batch.sagas[1].outbox[2]}));
  EXPECT_EQ(commands_of(rec->outbox, "a"), batch.sagas[2].outbox);
  EXPECT_EQ(*store->find("nobody"), std::nullopt);
}

TEST(SqliteStore, CancelledTimersAreRemoved) {
  auto store = open_store(options_for(temp_path("store.db")));
  ASSERT_NE(store, nullptr);
  WriteBatch first;
  first.sagas = {write_of("a", 1, 1)};
  first.sagas[0].timers.push_back(timer_of("a", 7));
  ASSERT_OK(store->commit(first));

  WriteBatch second;
  second.sagas = {write_of("a", 2, 2)};
  // Cancelling and re-arming one id in one write leaves it armed with the new due time.
  Timer rearmed = timer_of("a", 7);
  rearmed.due = from_ms(1'700'000'090'000);
  rearmed.kind = TimerKind::kRetry;
  second.sagas[0].cancel_timers = {timer_of("a", 1).id, timer_of("a", 7).id};
  second.sagas[0].timers.push_back(rearmed);
  ASSERT_OK(store->commit(second));

  auto rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(rec->timers, (std::vector<Timer>{timer_of("a", 2), rearmed}));
}

TEST(SqliteStore, LaterSnapshotOfSameSagaInOneBatchWins) {
  auto store = open_store(options_for(temp_path("store.db")));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 2), write_of("a", 3, 3, SagaStatus::kStuck), write_of("b", 1, 1),
                 write_of("b", 2, 2, SagaStatus::kCompleted)};
  ASSERT_OK(store->commit(batch));
  auto rec = store->recover();
  ASSERT_OK(rec);
  ASSERT_EQ(rec->active.size(), 1u);
  EXPECT_EQ(rec->active[0], batch.sagas[1].state);
  EXPECT_EQ((*store->find("b"))->status, SagaStatus::kCompleted);
  EXPECT_EQ(store->events("a")->size(), 3u);
}

TEST(SqliteStore, FindReturnsSummaryOrNothing) {
  auto store = open_store(options_for(temp_path("store.db")));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 3, SagaStatus::kStuck)};
  ASSERT_OK(store->commit(batch));

  auto found = store->find("a");
  ASSERT_OK(found);
  ASSERT_TRUE(found->has_value());
  const SagaSummary& s = **found;
  const SagaState& state = batch.sagas[0].state;
  EXPECT_EQ(s.id, "a");
  EXPECT_EQ(s.definition, state.definition);
  EXPECT_EQ(s.version, state.version);
  EXPECT_EQ(s.status, SagaStatus::kStuck);
  EXPECT_EQ(s.input, state.input);
  EXPECT_EQ(s.reason, "refund failed");
  EXPECT_EQ(s.started_at, state.started_at);
  EXPECT_EQ(s.updated_at, state.updated_at);
  EXPECT_EQ(s.events, 3u);

  auto missing = store->find("nope");
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->has_value());
  auto no_events = store->events("nope");
  ASSERT_OK(no_events);
  EXPECT_TRUE(no_events->empty());
}

TEST(SqliteStore, ListFiltersAndPagesNewestStartedFirst) {
  auto store = open_store(options_for(temp_path("store.db")));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("old", 1, 1), write_of("stuck", 1, 4, SagaStatus::kStuck),
                 write_of("new", 1, 6), write_of("trip", 1, 5), write_of("twin", 1, 2)};
  const int64_t t0 = 1'700'000'000'000;
  const int64_t started[] = {t0, t0 + 10, t0 + 30, t0 + 20, t0 + 30};
  for (size_t i = 0; i < batch.sagas.size(); ++i)
    batch.sagas[i].state.started_at = from_ms(started[i]);
  batch.sagas[3].state.definition = "trip";
  ASSERT_OK(store->commit(batch));

  auto ids = [&](ListFilter f) {
    std::vector<std::string> out;
    auto r = store->list(f);
    EXPECT_OK(r);
    if (r.ok())
      for (const SagaSummary& s : *r) out.push_back(s.id);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"new", "twin", "trip", "stuck", "old"}));  // same start: by id
  EXPECT_EQ(ids({.status = SagaStatus::kStuck}), (V{"stuck"}));
  EXPECT_EQ(ids({.status = SagaStatus::kRunning, .definition = "order"}),
            (V{"new", "twin", "old"}));
  EXPECT_EQ(ids({.definition = "trip"}), (V{"trip"}));
  EXPECT_TRUE(ids({.status = SagaStatus::kCompleted}).empty());
  // updated_at = t0 + seq: since t0 + 4 leaves the sagas with 4 events or more.
  EXPECT_EQ(ids({.updated_since = from_ms(t0 + 4)}), (V{"new", "trip", "stuck"}));
  // Pages of two, each resuming after the last saga of the one before.
  EXPECT_EQ(ids({.limit = 2}), (V{"new", "twin"}));
  EXPECT_EQ(ids({.after = std::pair{from_ms(t0 + 30), std::string("twin")}, .limit = 2}),
            (V{"trip", "stuck"}));
  EXPECT_EQ(ids({.after = std::pair{from_ms(t0 + 10), std::string("stuck")}, .limit = 2}),
            (V{"old"}));
  auto n = store->count({.status = SagaStatus::kRunning});
  ASSERT_OK(n);
  EXPECT_EQ(*n, 4u);
  auto since = store->count({.updated_since = from_ms(t0 + 4)});
  ASSERT_OK(since);
  EXPECT_EQ(*since, 3u);
}

TEST(SqliteStore, ConcurrentCommitsFromSeveralThreadsAreAllKept) {
  auto store = open_store(options_for(temp_path("store.db")));
  ASSERT_NE(store, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store, t] {
      for (int i = 0; i < 25; ++i) {
        WriteBatch batch;
        batch.sagas = {write_of("t" + std::to_string(t) + "-" + std::to_string(i), 1, 2)};
        EXPECT_OK(store->commit(batch));
        EXPECT_OK(store->recover());
      }
    });
  }
  for (auto& th : threads) th.join();
  auto rec = store->recover();
  ASSERT_OK(rec);
  EXPECT_EQ(rec->active.size(), 100u);
  EXPECT_EQ(rec->outbox.size(), 100u);
}

TEST(SqliteStore, CorruptSnapshotFailsRecoveryNamingTheSaga) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("order-17", 1, 1)};
  ASSERT_OK(store->commit(batch));
  RawDb(path).exec("UPDATE saga_state SET snapshot = x'01deadbeef' WHERE saga_id = 'order-17'");
  auto rec = store->recover();
  EXPECT_EQ(rec.status().code(), Code::kCorruption);
  EXPECT_NE(rec.status().message().find("order-17"), std::string::npos) << rec.status().to_string();
}

TEST(SqliteStore, CorruptPendingColumnFailsRecoveryAndCommitNamingTheSaga) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("order-17", 1, 1)};
  ASSERT_OK(store->commit(batch));
  store.reset();
  // A command count far beyond the bytes that follow: refused before anything is allocated.
  RawDb(path).exec(
      "UPDATE saga_state SET pending = x'01ffffffffffffff7f00' WHERE saga_id = 'order-17'");
  store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  auto rec = store->recover();
  EXPECT_EQ(rec.status().code(), Code::kCorruption);
  EXPECT_NE(rec.status().message().find("order-17"), std::string::npos) << rec.status().to_string();
  batch.sagas = {write_of("order-17", 2, 2)};
  Status st = store->commit(batch);
  EXPECT_EQ(st.code(), Code::kCorruption) << st.to_string();
  EXPECT_NE(st.message().find("order-17"), std::string::npos) << st.to_string();
  EXPECT_EQ(store->events("order-17")->size(), 1u);  // nothing of the batch was written
}

TEST(SqliteStore, UnknownEventTypeIsCorruption) {
  const std::string path = temp_path("store.db");
  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.sagas = {write_of("a", 1, 2)};
  ASSERT_OK(store->commit(batch));
  RawDb(path).exec("UPDATE events SET type = 'StepExploded' WHERE seq = 2");
  auto events = store->events("a");
  EXPECT_EQ(events.status().code(), Code::kCorruption);
  EXPECT_NE(events.status().message().find("StepExploded"), std::string::npos);
}

// A file with the first schema version and data in it, as an older build left it.
void write_version1_file(const std::string& path, const SagaState& state) {
  RawDb raw(path);
  raw.exec("PRAGMA journal_mode=WAL");
  raw.exec(kSchemaV1);
  raw.exec(
      "INSERT INTO events VALUES('a', 1, 'SagaStarted', -1, 2, 0, 1700000000001, 10, 'order', "
      "'{}', '')");
  // Two commands in flight, a timer each, a row of a saga the log does not hold and one of a
  // finished saga.
  raw.exec(
      "INSERT INTO outbox VALUES(7, 'a/reserve/a2', 'a', 'inventory', 'ReserveItems', 0, "
      "'{\"order\":7}', '00-trace'), (3, 'a/reserve/a1', 'a', 'inventory', 'ReserveItems', 0, "
      "'{\"order\":7}', '00-trace'), (9, 'gone/x/a1', 'gone', 'p', 'X', 0, '{}', ''), "
      "(11, 'done/x/a1', 'done', 'p', 'X', 0, '{}', '')");
  raw.exec(
      "INSERT INTO saga_state VALUES('done', 'order', 2, 'completed', '{}', '', 1, 2, 3, NULL)");
  raw.exec(
      "INSERT INTO timers VALUES('a/reserve/a2#t', 'a', 1700000030000, 'timeout', 0, 2, 0), "
      "('a/reserve/a1#r', 'a', 1700000020000, 'retry', 0, 1, 0)");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO saga_state VALUES('a', 'order', 2, 'running', "
                               "'{}', '', 1, 2, 1, ?1)",
                               -1, &s, nullptr),
            SQLITE_OK);
  const std::string snapshot = encode_snapshot(state);
  sqlite3_bind_blob(s, 1, snapshot.data(), static_cast<int>(snapshot.size()), SQLITE_TRANSIENT);
  EXPECT_EQ(sqlite3_step(s), SQLITE_DONE);
  sqlite3_finalize(s);
  sqlite3_close(db);
  raw.exec("PRAGMA user_version=1");
}

TEST(SqliteStoreMigration, Version1FileIsMigratedWithDataIntact) {
  const std::string path = temp_path("v1.db");
  const SagaState state = state_of("a", SagaStatus::kRunning, 1);
  write_version1_file(path, state);

  auto store = open_store(options_for(path));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), SqliteStore::kSchemaVersion);
  auto rec = store->recover();
  ASSERT_OK(rec);
  ASSERT_EQ(rec->active.size(), 1u);
  EXPECT_EQ(rec->active[0], state);
  // The outbox and timer rows moved into the saga's row, in their order.
  EXPECT_EQ(rec->outbox, (std::vector<Command>{command_of("a", 1), command_of("a", 2)}));
  Timer retry = timer_of("a", 1);
  retry.id = "a/reserve/a1#r";
  retry.kind = TimerKind::kRetry;
  retry.due = from_ms(1'700'000'020'000);
  EXPECT_EQ(rec->timers, (std::vector<Timer>{retry, timer_of("a", 2)}));
  auto events = store->events("a");
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].detail, "order");

  RawDb raw(path);
  EXPECT_EQ(raw.value("PRAGMA user_version"), std::to_string(SqliteStore::kSchemaVersion));
  EXPECT_EQ(raw.rows("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                     "ORDER BY name"),
            (std::vector<std::string>{"saga_state_live", "saga_state_started"}));
  EXPECT_EQ(raw.value("SELECT count(*) FROM sqlite_master WHERE name IN ('outbox', 'timers')"),
            "0");
  EXPECT_EQ(raw.value("SELECT typeof(pending) FROM saga_state WHERE saga_id = 'done'"), "null");
}

TEST(SqliteStore, DefinitionIsKeptOncePerFingerprintAndReadBackByAReader) {
  const std::string path = temp_path("defs.db");
  {
    auto store = open_store(options_for(path));
    ASSERT_NE(store, nullptr);
    WriteBatch batch;
    batch.sagas = {write_of("a", 1, 1)};
    batch.definitions = {
        {"order", 2, "00000000000000aa", "saga order version 2 {...}", from_ms(5)}};
    ASSERT_OK(store->commit(batch));
    // Another engine records the same fingerprint again: the first row stays.
    batch.sagas = {write_of("b", 1, 1)};
    batch.definitions = {
        {"order", 2, "00000000000000aa", "other text", from_ms(9)},
        {"order", 3, "00000000000000bb", "saga order version 3 {...}", from_ms(9)}};
    ASSERT_OK(store->commit(batch));
  }
  SqliteOptions options = options_for(path);
  options.read_only = true;
  auto reader = open_store(options);
  ASSERT_NE(reader, nullptr);
  auto d = reader->definition("00000000000000aa");
  ASSERT_OK(d);
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ(**d, (DefinitionRecord{"order", 2, "00000000000000aa", "saga order version 2 {...}",
                                   from_ms(5)}));
  auto none = reader->definition("ffffffffffffffff");
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  auto all = reader->definitions();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].version, 3);
}

TEST(SqliteStoreMigration, NewFileStartsAtCurrentVersion) {
  auto store = open_store(options_for(temp_path("new.db")));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), SqliteStore::kSchemaVersion);
}

TEST(SqliteStoreMigration, FileFromNewerVersionIsRefused) {
  const std::string path = temp_path("future.db");
  RawDb(path).exec("PRAGMA user_version=99");
  auto r = SqliteStore::open(options_for(path));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("99"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(SqliteStore::kSchemaVersion)), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(SqliteStoreMigration, ReadOnlyOpenNeitherMigratesNorWrites) {
  const std::string path = temp_path("v1.db");
  write_version1_file(path, state_of("a", SagaStatus::kRunning, 1));
  SqliteOptions options = options_for(path);
  options.read_only = true;
  auto store = open_store(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), 1);
  auto found = store->find("a");
  ASSERT_OK(found);
  EXPECT_TRUE(found->has_value());
  WriteBatch batch;
  batch.sagas = {write_of("b", 1, 1)};
  EXPECT_EQ(store->commit(batch).code(), Code::kFailedPrecondition);
  EXPECT_EQ(RawDb(path).value("PRAGMA user_version"), "1");
  // A log from before definitions were recorded has none to give.
  auto def = store->definition("00000000000000aa");
  ASSERT_OK(def);
  EXPECT_FALSE(def->has_value());
  auto defs = store->definitions();
  ASSERT_OK(defs);
  EXPECT_TRUE(defs->empty());
}

TEST(SnapshotCodec, RoundTripPreservesEveryField) {
  SagaState s = state_of("order/\xE2\x82\xAC-1", SagaStatus::kCompensating, 12);
  s.seed = std::numeric_limits<uint64_t>::max();
  s.version = -3;
  s.context = std::string("with\0nul", 8);
  s.stuck_compensating = true;
  s.steps.push_back({StepPhase::kCompBackoff, 3, 9, true, "refund: 503"});
  s.steps.push_back({StepPhase::kCompensated, 1, 1, false, ""});
  s.started_at = from_ms(-5);
  s.reason = "payment declined";
  auto decoded = decode_snapshot(encode_snapshot(s));
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, s);

  auto empty = decode_snapshot(encode_snapshot(SagaState{}));
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, SagaState{});
}

TEST(SnapshotCodec, FormatOneSnapshotsOfEarlierVersionsAreStillRead) {
  // Format 1 had no StepProgress::undelivered, 2 no SagaState::failure and fingerprint: without
  // steps and without the trailing (empty) strings the layouts are the same.
  SagaState s = state_of("old", SagaStatus::kRunning, 3);
  s.steps.clear();
  const std::string v3 = encode_snapshot(s);
  for (char format : {1, 2}) {
    std::string old = v3.substr(0, v3.size() - 16);  // empty failure and fingerprint
    old[0] = format;
    auto decoded = decode_snapshot(old);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, s);
  }
}

TEST(SnapshotCodec, GarbageIsCorruptionNotACrash) {
  const std::string good = encode_snapshot(state_of("a", SagaStatus::kRunning, 3));
  EXPECT_EQ(decode_snapshot("").status().code(), Code::kCorruption);

  std::string unknown_format = good;
  unknown_format[0] = 9;
  EXPECT_EQ(decode_snapshot(unknown_format).status().code(), Code::kCorruption);
  EXPECT_NE(decode_snapshot(unknown_format).status().message().find("format"), std::string::npos);

  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_EQ(decode_snapshot(good.substr(0, n)).status().code(), Code::kCorruption) << n;
  }
  EXPECT_EQ(decode_snapshot(good + "x").status().code(), Code::kCorruption);

  // A length prefix claiming far more than the input holds.
  std::string huge = good;
  for (int i = 2; i < 10; ++i) huge[i] = '\x7f';
  EXPECT_EQ(decode_snapshot(huge).status().code(), Code::kCorruption);

  testutil::SeededRandom rnd;
  for (int i = 0; i < 2000; ++i) {
    std::string bytes = good;
    const int flips = rnd.uniform(1, 4);
    for (int f = 0; f < flips; ++f) {
      bytes[rnd.uniform(1, static_cast<int>(bytes.size()) - 1)] =
          static_cast<char>(rnd.uniform(0, 255));
    }
    auto r = decode_snapshot(bytes);  // must return, whatever it returns
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kCorruption);
    }
  }
}

}  // namespace
}  // namespace saga
