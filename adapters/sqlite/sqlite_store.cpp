// SqliteStore: one SQLite file in WAL mode, a writing connection and a read-only one each behind
// a mutex, statements prepared once at open. Schema changes are an ordered list of migrations
// tracked by PRAGMA user_version.
#include "saga/sqlite_store.hpp"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cereal/archives/portable_binary.hpp>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <limits>
#include <mutex>
#include <sstream>
#include <streambuf>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "saga/limits.hpp"
#include "sqlite_util.hpp"

namespace saga {

using namespace sqlite_detail;

// ---------------------------------------------------------------------------------------------
// Snapshot codec: a format byte, then a cereal portable binary archive of every SagaState field.

namespace {

// 2 added StepProgress::undelivered, 3 SagaState::failure; older formats are still read.
constexpr uint8_t kSnapshotFormat = 3;

using OutArchive = cereal::PortableBinaryOutputArchive;
using InArchive = cereal::PortableBinaryInputArchive;

void put_string(OutArchive& ar, const std::string& s) {
  ar(static_cast<uint64_t>(s.size()));
  ar(cereal::binary_data(s.data(), s.size()));
}

// Reads from a string without copying it, and knows how many bytes are left so that a corrupt
// length cannot make the decoder allocate more than the input could hold.
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(std::string_view bytes) {
    char* p = const_cast<char*>(bytes.data());
    setg(p, p, p + bytes.size());
  }
  size_t remaining() const { return static_cast<size_t>(egptr() - gptr()); }
};

// Appends to a string: a snapshot is encoded per decision, and an ostringstream (locale and
// all) cost as much to build as the encoding itself.
class StringOut : public std::streambuf {
 public:
  std::string bytes;

 protected:
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof())) bytes.push_back(static_cast<char>(c));
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    bytes.append(s, static_cast<size_t>(n));
    return n;
  }
};

struct Decoder {
  ViewBuf& buf;
  InArchive& ar;
  uint8_t format;
  std::string error;

  template <typename T>
  T num() {
    T v{};
    ar(v);
    return v;
  }
  bool fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  bool str(std::string* out, const char* field) {
    uint64_t n = num<uint64_t>();
    if (n > buf.remaining()) return fail(std::string(field) + ": length exceeds input");
    out->resize(n);
    if (n > 0) ar(cereal::binary_data(out->data(), n));
    return true;
  }
  bool flag(bool* out, const char* field) {
    uint8_t v = num<uint8_t>();
    if (v > 1) return fail(std::string(field) + ": not a boolean");
    *out = v == 1;
    return true;
  }
  template <typename E>
  bool enumeration(E* out, E max, const char* field) {
    uint8_t v = num<uint8_t>();
    if (v > static_cast<uint8_t>(max)) return fail(std::string(field) + ": unknown value");
    *out = static_cast<E>(v);
    return true;
  }
};

// Smallest encoding of one StepProgress: phase, two int32, flag, empty error length.
constexpr size_t kMinStepBytes = 1 + 4 + 4 + 1 + 8;

bool decode_fields(Decoder& d, SagaState* s) {
  if (!d.str(&s->id, "id") || !d.str(&s->definition, "definition")) return false;
  s->version = d.num<int32_t>();
  s->seed = d.num<uint64_t>();
  if (!d.str(&s->input, "input") || !d.str(&s->context, "context") || !d.str(&s->trace, "trace")) {
    return false;
  }
  if (!d.enumeration(&s->status, SagaStatus::kAborted, "status") ||
      !d.flag(&s->stuck_compensating, "stuck_compensating")) {
    return false;
  }
  uint64_t n = d.num<uint64_t>();
  const size_t min_step = kMinStepBytes + (d.format >= 2 ? 8 : 0);
  if (n > d.buf.remaining() / min_step) return d.fail("steps: count exceeds input");
  s->steps.resize(n);
  for (StepProgress& p : s->steps) {
    if (!d.enumeration(&p.phase, StepPhase::kCompensated, "step phase")) return false;
    p.attempt = d.num<int32_t>();
    p.comp_attempt = d.num<int32_t>();
    if (!d.flag(&p.maybe_applied, "maybe_applied") || !d.str(&p.error, "step error")) {
      return false;
    }
    if (d.format >= 2 && !d.str(&p.undelivered, "step undelivered")) return false;
  }
  s->seq = d.num<uint32_t>();
  s->started_at = from_ms(d.num<int64_t>());
  s->updated_at = from_ms(d.num<int64_t>());
  if (!d.str(&s->reason, "reason")) return false;
  if (d.format >= 3 && (!d.str(&s->failure, "failure") || !d.str(&s->fingerprint, "fingerprint")))
    return false;
  if (d.buf.remaining() != 0) return d.fail("trailing bytes");
  return true;
}

// A saga's outbox commands and armed timers, kept in its saga_state row: rewriting that row is
// part of every decision anyway, where separate outbox and timer rows cost an insert and a
// delete each (and their indexes) per step.
struct Pending {
  std::vector<Command> outbox;  // in the order written
  std::vector<Timer> timers;

  bool empty() const { return outbox.empty() && timers.empty(); }
  void add(const Command& c) {
    for (const Command& have : outbox) {
      if (have.id == c.id) return;  // written again: the first stays
    }
    outbox.push_back(c);
  }
  void settle(const std::string& command_id) {
    std::erase_if(outbox, [&](const Command& c) { return c.id == command_id; });
  }
  void arm(const Timer& t) {
    cancel(t.id);
    timers.push_back(t);
  }
  void cancel(const std::string& timer_id) {
    std::erase_if(timers, [&](const Timer& t) { return t.id == timer_id; });
  }
};

constexpr uint8_t kPendingFormat = 1;

// Empty when nothing is pending (stored as NULL).
std::string encode_pending(const Pending& p) {
  if (p.empty()) return {};
  thread_local StringOut buf;
  thread_local std::ostream os(&buf);
  buf.bytes.clear();
  os.clear();
  os.put(static_cast<char>(kPendingFormat));
  {
    OutArchive ar(os);
    ar(static_cast<uint64_t>(p.outbox.size()));
    for (const Command& c : p.outbox) {
      put_string(ar, c.id);
      put_string(ar, c.participant);
      put_string(ar, c.type);
      ar(static_cast<uint8_t>(c.compensation));
      put_string(ar, c.payload);
      put_string(ar, c.trace);
    }
    ar(static_cast<uint64_t>(p.timers.size()));
    for (const Timer& t : p.timers) {
      put_string(ar, t.id);
      ar(static_cast<int64_t>(to_ms(t.due)), static_cast<uint8_t>(t.kind),
         static_cast<int32_t>(t.step), static_cast<int32_t>(t.attempt),
         static_cast<uint8_t>(t.compensation));
    }
  }
  return std::move(buf.bytes);
}

// Smallest encodings: a command of empty strings, a timer with an empty id.
constexpr size_t kMinCommandBytes = 5 * 8 + 1;
constexpr size_t kMinTimerBytes = 8 + 8 + 1 + 4 + 4 + 1;

Status decode_pending(std::string_view bytes, const std::string& saga_id, Pending* out) {
  *out = Pending{};
  if (bytes.empty()) return Status::Ok();
  auto corrupt = [&](const std::string& why) {
    return Status::Corruption("saga " + saga_id + ": pending commands and timers: " + why);
  };
  if (static_cast<uint8_t>(bytes[0]) != kPendingFormat)
    return corrupt("unknown format version " + std::to_string(static_cast<uint8_t>(bytes[0])));
  // Each command and timer gets a copy of the id: a long one would multiply a small blob.
  if (saga_id.size() > kMaxIdBytes) return corrupt("saga id over " + std::to_string(kMaxIdBytes));
  try {
    ViewBuf buf(bytes.substr(1));
    std::istream is(&buf);
    InArchive ar(is);
    Decoder d{buf, ar, kPendingFormat, {}};
    uint64_t n = d.num<uint64_t>();
    if (n > buf.remaining() / kMinCommandBytes) return corrupt("command count exceeds input");
    out->outbox.resize(n);
    for (Command& c : out->outbox) {
      c.saga_id = saga_id;
      if (!d.str(&c.id, "command id") || !d.str(&c.participant, "participant") ||
          !d.str(&c.type, "command type") || !d.flag(&c.compensation, "compensation") ||
          !d.str(&c.payload, "payload") || !d.str(&c.trace, "trace"))
        return corrupt(d.error);
    }
    n = d.num<uint64_t>();
    if (n > buf.remaining() / kMinTimerBytes) return corrupt("timer count exceeds input");
    out->timers.resize(n);
    for (Timer& t : out->timers) {
      t.saga_id = saga_id;
      if (!d.str(&t.id, "timer id")) return corrupt(d.error);
      t.due = from_ms(d.num<int64_t>());
      const auto kind = d.num<uint8_t>();
      if (kind != static_cast<uint8_t>(TimerKind::kTimeout) &&
          kind != static_cast<uint8_t>(TimerKind::kRetry))
        return corrupt("timer " + t.id + ": unknown kind");
      t.kind = static_cast<TimerKind>(kind);
      t.step = d.num<int32_t>();
      t.attempt = d.num<int32_t>();
      if (!d.flag(&t.compensation, "timer compensation")) return corrupt(d.error);
    }
    if (buf.remaining() != 0) return corrupt("trailing bytes");
    return Status::Ok();
  } catch (const std::exception& e) {
    return corrupt(e.what());
  }
}

}  // namespace

std::string encode_snapshot(const SagaState& s) {
  thread_local StringOut buf;
  thread_local std::ostream os(&buf);
  buf.bytes.clear();
  buf.bytes.reserve(256 + s.input.size() + s.context.size());
  os.clear();
  os.put(static_cast<char>(kSnapshotFormat));
  {
    OutArchive ar(os);
    put_string(ar, s.id);
    put_string(ar, s.definition);
    ar(static_cast<int32_t>(s.version), static_cast<uint64_t>(s.seed));
    put_string(ar, s.input);
    put_string(ar, s.context);
    put_string(ar, s.trace);
    ar(static_cast<uint8_t>(s.status), static_cast<uint8_t>(s.stuck_compensating));
    ar(static_cast<uint64_t>(s.steps.size()));
    for (const StepProgress& p : s.steps) {
      ar(static_cast<uint8_t>(p.phase), static_cast<int32_t>(p.attempt),
         static_cast<int32_t>(p.comp_attempt), static_cast<uint8_t>(p.maybe_applied));
      put_string(ar, p.error);
      put_string(ar, p.undelivered);
    }
    ar(static_cast<uint32_t>(s.seq), static_cast<int64_t>(to_ms(s.started_at)),
       static_cast<int64_t>(to_ms(s.updated_at)));
    put_string(ar, s.reason);
    put_string(ar, s.failure);
    put_string(ar, s.fingerprint);
  }
  return std::move(buf.bytes);
}

Result<SagaState> decode_snapshot(const std::string& bytes) {
  if (bytes.empty()) return Status::Corruption("snapshot: empty");
  const auto format = static_cast<uint8_t>(bytes[0]);
  if (format < 1 || format > kSnapshotFormat) {
    return Status::Corruption("snapshot: unknown format version " + std::to_string(format));
  }
  try {
    ViewBuf buf(std::string_view(bytes).substr(1));
    std::istream is(&buf);
    InArchive ar(is);
    Decoder d{buf, ar, format, {}};
    SagaState state;
    if (!decode_fields(d, &state)) return Status::Corruption("snapshot: " + d.error);
    return state;
  } catch (const cereal::Exception& e) {
    return Status::Corruption(std::string("snapshot: ") + e.what());
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("snapshot: ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Schema.

namespace {

struct Migration {
  int version;
  const char* sql;
};

// events keeps a rowid so that its rows are appended in commit order and only small (saga_id,
// seq) index entries land at the end of each saga's log; clustered by saga, a batch over many
// sagas wrote twice as many WAL pages. saga_state carries blobs. (outbox and timers, until
// version 5: a saga's row holds them now.)
constexpr Migration kMigrations[] = {
    {1, R"sql(
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
)sql"},
    // Recovery visits active sagas only; timers are read in due order.
    {2, R"sql(
CREATE INDEX saga_state_active ON saga_state(saga_id) WHERE snapshot IS NOT NULL;
CREATE INDEX timers_due ON timers(due_ms);
)sql"},
    // SagaStarted records the fingerprint of the definition it started with.
    {3, R"sql(
ALTER TABLE events ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
)sql"},
    // The log describes itself: each definition a saga ran, as canonical text.
    {4, R"sql(
CREATE TABLE definitions(
  fingerprint TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
  text TEXT NOT NULL, first_used_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX saga_state_started ON saga_state(started_ms DESC, saga_id);
)sql"},
    // Outbox commands and timers move into their saga's row (fold_pending_rows), and their
    // tables go.
    {5, R"sql(
ALTER TABLE saga_state ADD COLUMN pending BLOB;
)sql"},
    // The index of live sagas depends on their status, which a decision seldom changes (the
    // snapshot, which it always rewrites, cost an index delete and insert per decision). An OR,
    // not IN: SQLite builds a temporary table for an IN of three values at each row it writes.
    {6, R"sql(
DROP INDEX saga_state_active;
CREATE INDEX saga_state_live ON saga_state(saga_id)
  WHERE status = 'running' OR status = 'compensating' OR status = 'stuck';
)sql"},
};
static_assert(std::size(kMigrations) == SqliteStore::kSchemaVersion);

// The kind column of the timers table before version 5.
constexpr const char* kTimerKinds[] = {"", "timeout", "retry"};

Status read_summary(sqlite3_stmt* s, SagaSummary* r) {
  r->id = column_text(s, 0);
  r->definition = column_text(s, 1);
  r->version = sqlite3_column_int(s, 2);
  const std::string status = column_text(s, 3);
  if (!parse_status_name(status, &r->status)) {
    return Status::Corruption("saga " + r->id + ": unknown status '" + status + "'");
  }
  r->input = column_text(s, 4);
  r->reason = column_text(s, 5);
  r->started_at = from_ms(sqlite3_column_int64(s, 6));
  r->updated_at = from_ms(sqlite3_column_int64(s, 7));
  r->events = static_cast<uint32_t>(sqlite3_column_int64(s, 8));
  return Status::Ok();
}

}  // namespace

struct SqliteStore::Impl {
  // flock()ed while this store may write: one writer per log. First member, so it is closed
  // last, after the database: the next writer gets in only then.
  struct WriterLock {
    std::vector<int> fds;
    ~WriterLock() {
      for (int fd : fds) ::close(fd);
    }
  } writer;
  Status lock_file(const std::string& lock_path);
  SqliteOptions options;
  std::unique_ptr<sqlite3, DbCloser> db;  // declared before the statements: closed last
  int version = 0;
  std::mutex mu;

  StmtPtr begin, commit, rollback;
  StmtPtr insert_event, insert_state, update_state, update_progress, select_pending, update_pending;
  StmtPtr select_active;
  StmtPtr select_events, select_summary, select_list, select_event_at, count_list;
  StmtPtr insert_definition, select_definition, select_definitions;
  // What each saga has pending as last committed, for sagas this writer has written (the only
  // writer: it holds the lock): a commit need not read it back. Only non-empty entries.
  std::unordered_map<std::string, Pending> pending_cache;
  // A writer's second, read-only connection: reads (find, events, list) do not wait for a
  // commit in progress, which WAL allows. Declared last: closed before the writer's.
  std::unique_ptr<SqliteStore> reader;

  // The connection reads go through.
  SqliteStore::Impl& for_reads() { return reader ? *reader->impl_ : *this; }

  sqlite3* h() const { return db.get(); }
  Status error(int rc, std::string_view what) const { return sqlite_error(h(), rc, what); }

  Status exec(const char* sql, std::string_view what) {
    int rc = sqlite3_exec(h(), sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : error(rc, what);
  }

  Result<int64_t> query_int(const char* sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(h(), sql, -1, &raw, nullptr);
    StmtPtr s(raw);
    if (rc != SQLITE_OK) return error(rc, sql);
    rc = sqlite3_step(s.get());
    if (rc != SQLITE_ROW) return error(rc, sql);
    return sqlite3_column_int64(s.get(), 0);
  }

  Status prepare(StmtPtr* out, const char* sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(h(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    out->reset(raw);
    return rc == SQLITE_OK ? Status::Ok() : error(rc, sql);
  }

  // Steps a statement that returns no rows, then resets it.
  Status run(sqlite3_stmt* s, const Bind& b, std::string_view what) {
    Use use(s);
    if (b.rc() != SQLITE_OK) return error(b.rc(), what);
    int rc = sqlite3_step(s);
    return rc == SQLITE_DONE ? Status::Ok() : error(rc, what);
  }
  Status run(sqlite3_stmt* s, std::string_view what) { return run(s, Bind(s), what); }

  // Steps a query, calling row(stmt) -> Status for each row until one fails; then resets it.
  template <typename F>
  Status rows(sqlite3_stmt* s, const Bind& b, std::string_view what, F&& row) {
    Use use(s);
    if (b.rc() != SQLITE_OK) return error(b.rc(), what);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      if (Status st = row(s); !st.ok()) return st;
    }
    return rc == SQLITE_DONE ? Status::Ok() : error(rc, what);
  }

  Status same_event(const std::string& id, const Event& e) {
    sqlite3_stmt* s = select_event_at.get();
    bool same = false;
    Status st = rows(s, Bind(s).text(id).i64(e.seq), "read event", [&](sqlite3_stmt* r) {
      same = column_text(r, 0) == event_name(e.type) && sqlite3_column_int(r, 1) == e.step &&
             sqlite3_column_int(r, 2) == e.attempt &&
             (sqlite3_column_int(r, 3) != 0) == e.compensation &&
             sqlite3_column_int64(r, 4) == to_ms(e.at) && sqlite3_column_int64(r, 5) == e.value &&
             column_text(r, 6) == e.detail && column_text(r, 7) == e.data &&
             column_text(r, 8) == e.trace && column_text(r, 9) == e.fingerprint;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    if (same) return Status::Ok();
    return Status::FailedPrecondition("saga '" + id + "': event " + std::to_string(e.seq) +
                                      " differs from the one already in the log (another "
                                      "writer?); nothing of this batch is committed");
  }
  Status lock_writer();
  Status configure();
  Status migrate();
  Status prepare_all();
  Status fold_pending_rows();
  Status write(const WriteBatch& batch);
  Status load_pending(const std::string& saga_id, Pending* out);
  Status write_saga(const SagaWrite& w, const std::string& pending, bool* wrote);
  Status read_recovery(Recovery* out);
};

Status SqliteStore::Impl::configure() {
  sqlite3_extended_result_codes(h(), 1);
  sqlite3_busy_timeout(h(), options.busy_timeout_ms);
  if (Status st = exec("PRAGMA foreign_keys=OFF", "foreign_keys"); !st.ok()) return st;

  auto v = query_int("PRAGMA user_version");
  if (!v.ok()) return v.status();
  version = static_cast<int>(*v);
  if (version > kSchemaVersion) {
    return Status::FailedPrecondition(options.path + ": schema version " + std::to_string(version) +
                                      " is newer than this build supports (" +
                                      std::to_string(kSchemaVersion) + ")");
  }
  if (version == 0) {
    auto objects = query_int("SELECT count(*) FROM sqlite_master");
    if (!objects.ok()) return objects.status();
    if (options.read_only && *objects == 0) {
      return Status::NotFound(options.path +
                              ": no saga log in it yet (an empty database: no engine has "
                              "committed to it)");
    }
    if (*objects > 0) {
      return Status::FailedPrecondition(
          options.path + ": not a saga log (it holds " + std::to_string(*objects) +
          " tables or indexes of something else)" +
          (options.read_only ? "" : "; refusing to add the saga tables to it"));
    }
  }
  if (options.read_only) return Status::Ok();

  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(h(), "PRAGMA journal_mode=WAL", -1, &raw, nullptr);
  StmtPtr s(raw);
  if (rc != SQLITE_OK || (rc = sqlite3_step(s.get())) != SQLITE_ROW) return error(rc, "WAL");
  const std::string mode = column_text(s.get(), 0);
  if (mode != "wal" && mode != "memory") {
    return Status::FailedPrecondition(options.path + ": cannot use WAL (journal_mode " + mode +
                                      ")");
  }
  return exec(synchronous_pragma(options.sync), "synchronous");
}

// One transaction per migration; the version is read again under the write lock so that two
// processes opening the same new file do not both apply it.
Status SqliteStore::Impl::migrate() {
  for (const Migration& m : kMigrations) {
    if (m.version <= version) continue;
    if (Status st = exec("BEGIN IMMEDIATE", "migration begin"); !st.ok()) return st;
    auto current = query_int("PRAGMA user_version");
    Status st = current.status();
    if (st.ok() && *current < m.version) {
      st = exec(m.sql, "migration " + std::to_string(m.version));
      if (st.ok() && m.version == 5) st = fold_pending_rows();
      const std::string set = "PRAGMA user_version=" + std::to_string(m.version);
      if (st.ok()) st = exec(set.c_str(), "user_version");
    }
    if (st.ok()) st = exec("COMMIT", "migration commit");
    if (!st.ok()) {
      if (!sqlite3_get_autocommit(h())) sqlite3_exec(h(), "ROLLBACK", nullptr, nullptr, nullptr);
      return Status(st.code(), options.path + ": " + st.message());
    }
    version = m.version;
  }
  return Status::Ok();
}

constexpr const char* kSelectEvents =
    "SELECT seq, type, step, attempt, compensation, at_ms, value, detail, data, trace, "
    "fingerprint FROM events WHERE saga_id = ?1 ORDER BY seq";
constexpr const char* kSelectEventsBeforeV3 =
    "SELECT seq, type, step, attempt, compensation, at_ms, value, detail, data, trace, "
    "'' FROM events WHERE saga_id = ?1 ORDER BY seq";

Status SqliteStore::Impl::prepare_all() {
  std::vector<std::pair<StmtPtr*, const char*>> stmts = {
      {&begin, "BEGIN IMMEDIATE"},
      {&commit, "COMMIT"},
      {&rollback, "ROLLBACK"},
      {&insert_event,
       "INSERT OR IGNORE INTO events(saga_id, seq, type, step, attempt, compensation, at_ms, "
       "value, detail, data, trace, fingerprint) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
      // A saga's first write inserts its row, later ones update what changes (a plain UPDATE:
      // an upsert first tries the insert). A stale snapshot (a batch committed again later)
      // never overwrites a newer one.
      {&insert_state,
       "INSERT OR IGNORE INTO saga_state(saga_id, definition, version, status, input, reason, "
       "started_ms, updated_ms, events, snapshot, pending) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
       "?8, ?9, ?10, ?11)"},
      {&update_state,
       "UPDATE saga_state SET status = ?2, reason = ?3, updated_ms = ?4, events = ?5, "
       "snapshot = ?6, pending = ?7 WHERE saga_id = ?1 AND events <= ?5"},
      // Most decisions change neither status nor reason: leaving them out of the SET spares the
      // index of live sagas.
      {&update_progress,
       "UPDATE saga_state SET updated_ms = ?4, events = ?5, snapshot = ?6, pending = ?7 WHERE "
       "saga_id = ?1 AND events <= ?5 AND status = ?2 AND reason = ?3"},
      {&select_pending, "SELECT pending FROM saga_state WHERE saga_id = ?1"},
      {&update_pending, "UPDATE saga_state SET pending = ?2 WHERE saga_id = ?1"},
      {&select_active,
       "SELECT saga_id, snapshot, pending FROM saga_state WHERE status = 'running' OR status "
       "= 'compensating' OR status = 'stuck'"},
      {&select_event_at,
       "SELECT type, step, attempt, compensation, at_ms, value, detail, data, trace, "
       "fingerprint FROM events WHERE saga_id = ?1 AND seq = ?2"},
      // A read-only open of an older file (not migrated) has no fingerprint column.
      {&select_events, version >= 3 ? kSelectEvents : kSelectEventsBeforeV3},
      {&select_summary,
       "SELECT saga_id, definition, version, status, input, reason, started_ms, updated_ms, "
       "events FROM saga_state WHERE saga_id = ?1"},
      {&select_list,
       "SELECT saga_id, definition, version, status, input, reason, started_ms, updated_ms, "
       "events FROM saga_state WHERE (?1 IS NULL OR status = ?1) AND (?2 = '' OR "
       "definition = ?2) AND (?4 IS NULL OR updated_ms >= ?4) AND (?5 IS NULL OR started_ms < "
       "?5 OR (started_ms = ?5 AND saga_id > ?6)) ORDER BY started_ms DESC, saga_id LIMIT ?3"},
      {&count_list,
       "SELECT count(*) FROM saga_state WHERE (?1 IS NULL OR status = ?1) AND (?2 = '' OR "
       "definition = ?2) AND (?3 IS NULL OR updated_ms >= ?3)"},
  };
  if (version >= 4) {
    stmts.push_back({&insert_definition,
                     "INSERT OR IGNORE INTO definitions(fingerprint, name, version, text, "
                     "first_used_ms) VALUES(?1, ?2, ?3, ?4, ?5)"});
    stmts.push_back({&select_definition,
                     "SELECT fingerprint, name, version, text, first_used_ms FROM definitions "
                     "WHERE fingerprint = ?1"});
    stmts.push_back({&select_definitions,
                     "SELECT fingerprint, name, version, text, first_used_ms FROM definitions "
                     "ORDER BY name, version, first_used_ms"});
  }
  for (const auto& [out, sql] : stmts) {
    // A reader of a file older than this build prepares only what reads (commit() refuses).
    // (Recovery reads columns that are there since version 5.)
    if (options.read_only && version < kSchemaVersion && out != &select_events &&
        out != &select_summary && out != &select_list && out != &count_list && out != &begin &&
        out != &commit && out != &rollback && out != &select_definition &&
        out != &select_definitions && !(out == &select_active && version >= 5))
      continue;
    if (Status st = prepare(out, sql); !st.ok()) return st;
  }
  return Status::Ok();
}

namespace {
// No second connection can see such a database (":memory:", or a URI that may name one).
bool in_memory(const std::string& path) {
  return path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0;
}

bool needs_wal_recovery(sqlite3* db) {
  if (sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, nullptr) ==
      SQLITE_OK)
    return false;
  const int code = sqlite3_extended_errcode(db);
  return code == SQLITE_READONLY_RECOVERY || code == SQLITE_READONLY_CANTINIT ||
         code == SQLITE_READONLY_ROLLBACK;
}
}  // namespace

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const SqliteOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const int flags =
      options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  impl->db.reset(raw);
  if (raw != nullptr) sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  if (rc != SQLITE_OK) {
    Status st = sqlite_error(raw, rc, "open " + options.path);
    if ((rc & 0xff) == SQLITE_CANTOPEN) return Status::NotFound(st.message());
    return st;
  }
  if (options.read_only && needs_wal_recovery(raw)) {
    // A writer died leaving a WAL to index or a hot journal to roll back, which a read-only
    // connection cannot do. Read through one that may recover what was committed but writes
    // nothing new: query_only, and no checkpoint when it closes.
    impl->db.reset();
    rc = sqlite3_open_v2(options.path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                         options.vfs.empty() ? nullptr : options.vfs.c_str());
    impl->db.reset(raw);
    if (rc != SQLITE_OK) {
      return sqlite_error(raw, rc,
                          "open " + options.path +
                              " (its writer stopped without closing it; reading it needs write "
                              "access to recover what was committed)");
    }
    sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    sqlite3_exec(raw, "PRAGMA query_only=1", nullptr, nullptr, nullptr);
  }
  if (!options.read_only) {
    if (Status st = impl->lock_writer(); !st.ok()) return st;
  }
  if (Status st = impl->configure(); !st.ok()) return st;
  if (!options.read_only) {
    if (Status st = impl->migrate(); !st.ok()) return st;
  }
  if (Status st = impl->prepare_all(); !st.ok()) return st;
  if (!options.read_only && !in_memory(options.path)) {
    SqliteOptions ro = options;
    ro.read_only = true;
    auto reader = SqliteStore::open(ro);
    if (!reader.ok()) return reader.status();
    impl->reader = std::move(reader).value();
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

// One writer per log: an exclusive flock() on "<file>.lock", held while the store is open (the
// kernel drops it when the process dies). Readers (sagactl) take no lock. A separate file,
// because closing any descriptor of the database file itself would drop SQLite's own locks.
// <file> is the database file as SQLite resolved it: a relative path, a symbolic link and a
// "file:" URI naming the same file share one lock. The path as given is locked too when it
// differs, as builds before this one locked only it. A database in memory has no file.
Status SqliteStore::Impl::lock_writer() {
  sqlite3_vfs* vfs = nullptr;
  if (sqlite3_file_control(h(), "main", SQLITE_FCNTL_VFS_POINTER, &vfs) == SQLITE_OK && vfs &&
      vfs->zName && std::string_view(vfs->zName) == "memdb")
    return Status::Ok();
  const char* file = sqlite3_db_filename(h(), "main");
  if (file == nullptr || *file == '\0') return Status::Ok();
  if (Status st = lock_file(std::string(file) + ".lock"); !st.ok()) return st;
  if (options.path.rfind("file:", 0) == 0) return Status::Ok();
  return lock_file(options.path + ".lock");
}

// Locks `lock_path` unless this store holds that file already (two descriptions of one file
// would exclude each other).
Status SqliteStore::Impl::lock_file(const std::string& lock_path) {
  const std::string& path = options.path;
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot open " + lock_path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    for (int held : writer.fds) {
      struct stat other {};
      if (::fstat(held, &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino) {
        ::close(fd);
        return Status::Ok();
      }
    }
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    (void)!::pread(fd, pid, sizeof pid - 1, 0);
    ::close(fd);
    std::string holder(pid);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return Status::FailedPrecondition(
        path + " is already open for writing" + (holder.empty() ? "" : " by process " + holder) +
        "; one engine writes a log at a time (read it with sagactl, which takes no lock)");
  }
  writer.fds.push_back(fd);
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, me.data(), me.size(), 0);
  return Status::Ok();
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

int SqliteStore::schema_version() const {
  return impl_->version;
}

// ---------------------------------------------------------------------------------------------
// Writes.

namespace {
// Events after which apply() may leave another status or reason (a hint: the progress update
// checks both anyway).
bool may_change_status(const std::vector<Event>& events) {
  for (const Event& e : events) {
    switch (e.type) {
      case EventType::kStepDispatched:
      case EventType::kStepSucceeded:
      case EventType::kRetryScheduled:
      case EventType::kCompensationSucceeded:
      case EventType::kCompensationFailed:
      case EventType::kCommandNotSent:
        break;
      case EventType::kStepFailed:
      case EventType::kStepTimedOut:
        if (e.final()) return true;
        break;
      default:
        return true;
    }
  }
  return false;
}

// Empty bytes are stored as NULL (a finished saga's snapshot, nothing pending).
Bind& blob_or_null(Bind& b, const std::string& bytes) {
  return bytes.empty() ? b.null() : b.blob(bytes);
}
}  // namespace

Status SqliteStore::Impl::load_pending(const std::string& saga_id, Pending* out) {
  sqlite3_stmt* stmt = select_pending.get();
  std::string bytes;
  Status st = rows(stmt, Bind(stmt).text(saga_id), "read pending", [&](sqlite3_stmt* r) {
    bytes = column_text(r, 0);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return decode_pending(bytes, saga_id, out);
}

Status SqliteStore::Impl::write_saga(const SagaWrite& w, const std::string& pending, bool* wrote) {
  const std::string& id = w.state.id;
  for (const Event& e : w.events) {
    Bind b(insert_event.get());
    b.text(id).i64(e.seq).text(event_name(e.type)).i64(e.step).i64(e.attempt);
    b.i64(e.compensation).i64(to_ms(e.at)).i64(e.value).text(e.detail).text(e.data).text(e.trace);
    b.text(e.fingerprint);
    if (Status st = run(insert_event.get(), b, "insert event"); !st.ok()) return st;
    // Already there: a batch committed again after a failure report, which is fine, or a log
    // that says something else, which must not get this saga's snapshot.
    if (sqlite3_changes(h()) == 0) {
      if (Status st = same_event(id, e); !st.ok()) return st;
    }
  }

  const SagaState& s = w.state;
  const std::string snapshot = is_terminal(s.status) ? std::string() : encode_snapshot(s);
  auto insert = [&]() {
    Bind b(insert_state.get());
    b.text(id).text(s.definition).i64(s.version).text(status_name(s.status)).text(s.input);
    b.text(s.reason).i64(to_ms(s.started_at)).i64(to_ms(s.updated_at)).i64(s.seq);
    blob_or_null(blob_or_null(b, snapshot), pending);
    return run(insert_state.get(), b, "insert saga_state");
  };
  auto update = [&](sqlite3_stmt* stmt) {
    Bind b(stmt);
    b.text(id).text(status_name(s.status)).text(s.reason).i64(to_ms(s.updated_at)).i64(s.seq);
    blob_or_null(blob_or_null(b, snapshot), pending);
    return run(stmt, b, "update saga_state");
  };
  // Either finds the row missing or present; the other one settles it (a batch committed again).
  // A stale write (a batch committed again after a newer one) changes neither the snapshot nor
  // what is pending. A write whose events keep status and reason tries the update that leaves
  // them (and the index of live sagas) alone; finding them changed, it takes the full one.
  const bool first = !w.events.empty() && w.events.front().seq == 1;
  if (first) {
    if (Status st = insert(); !st.ok()) return st;
    if (sqlite3_changes(h()) == 0) {
      if (Status st = update(update_state.get()); !st.ok()) return st;
    }
  } else {
    bool changed = false;
    if (!may_change_status(w.events)) {
      if (Status st = update(update_progress.get()); !st.ok()) return st;
      changed = sqlite3_changes(h()) > 0;
    }
    if (!changed) {
      if (Status st = update(update_state.get()); !st.ok()) return st;
    }
    if (sqlite3_changes(h()) == 0) {
      if (Status st = insert(); !st.ok()) return st;
    }
  }
  *wrote = sqlite3_changes(h()) > 0;
  return Status::Ok();
}

Status SqliteStore::Impl::write(const WriteBatch& batch) {
  if (Status st = run(begin.get(), "begin"); !st.ok()) return st;
  // What each saga touched here has pending once the batch is applied: as last committed (from
  // the cache or its row) unless the batch starts the saga, then changed as the batch says.
  // Taken out of the cache: a failed commit leaves those sagas to be read from their rows.
  struct Touched {
    Pending pending;
    std::string bytes;
    bool written = false;  // has a SagaWrite in the batch (which writes `bytes` with its row)
    bool stale = false;    // its row was not written (newer already, or no such saga)
  };
  std::unordered_map<std::string_view, Touched> touched;
  auto load = [&](const std::string& id, Pending* p) {
    if (auto node = pending_cache.extract(id)) {
      *p = std::move(node.mapped());
      return Status::Ok();
    }
    return load_pending(id, p);
  };
  for (const SagaWrite& w : batch.sagas) {
    auto [it, fresh] = touched.try_emplace(w.state.id);
    Pending& p = it->second.pending;
    it->second.written = true;
    if (fresh && (w.events.empty() || w.events.front().seq != 1)) {
      if (Status st = load(w.state.id, &p); !st.ok()) return st;
    } else if (fresh) {
      pending_cache.erase(w.state.id);  // its start again: the cache follows this commit
    }
    for (const std::string& t : w.cancel_timers) p.cancel(t);
    for (const Timer& t : w.timers) {
      if (t.kind != TimerKind::kTimeout && t.kind != TimerKind::kRetry)
        return Status::InvalidArgument("timer " + t.id + ": unknown kind");
      p.arm(t);
    }
    for (const Command& c : w.outbox) p.add(c);
    if (is_terminal(w.state.status)) p = Pending{};  // nothing can fire for a finished saga
  }
  for (const Settled& c : batch.sent) {
    auto [it, fresh] = touched.try_emplace(c.saga_id);
    if (fresh) {
      if (Status st = load(c.saga_id, &it->second.pending); !st.ok()) return st;
    }
    it->second.pending.settle(c.command_id);
  }
  for (auto& [id, t] : touched) t.bytes = encode_pending(t.pending);

  for (const SagaWrite& w : batch.sagas) {
    Touched& t = touched[w.state.id];
    bool wrote = false;
    if (Status st = write_saga(w, t.bytes, &wrote); !st.ok()) return st;
    t.stale = !wrote;  // the saga's last write decides
  }
  for (auto& [id, t] : touched) {
    if (t.written) continue;
    Bind b(update_pending.get());
    blob_or_null(b.text(id), t.bytes);
    if (Status st = run(update_pending.get(), b, "update pending"); !st.ok()) return st;
    t.stale = sqlite3_changes(h()) == 0;
  }
  for (const DefinitionRecord& d : batch.definitions) {
    Bind b(insert_definition.get());
    b.text(d.fingerprint).text(d.name).i64(d.version).text(d.text).i64(to_ms(d.first_used));
    if (Status st = run(insert_definition.get(), b, "insert definition"); !st.ok()) return st;
  }
  if (Status st = run(commit.get(), "commit"); !st.ok()) return st;
  for (auto& [id, t] : touched) {
    if (t.stale || t.pending.empty()) {
      pending_cache.erase(std::string(id));
    } else {
      pending_cache.insert_or_assign(std::string(id), std::move(t.pending));
    }
  }
  return Status::Ok();
}

// Migration 5: each saga's outbox and timer rows become its pending column, in the order the
// outbox table kept them; rows of sagas the log does not hold are dropped with the tables.
Status SqliteStore::Impl::fold_pending_rows() {
  std::unordered_map<std::string, Pending> all;
  auto query = [&](const char* sql, auto&& row) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(h(), sql, -1, &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) return error(rc, sql);
    return rows(stmt.get(), Bind(stmt.get()), "migration 5", row);
  };
  Status st = query(
      "SELECT command_id, saga_id, participant, type, compensation, payload, trace FROM outbox "
      "ORDER BY id",
      [&](sqlite3_stmt* r) {
        Command c{column_text(r, 0),
                  column_text(r, 1),
                  column_text(r, 2),
                  column_text(r, 3),
                  sqlite3_column_int(r, 4) != 0,
                  column_text(r, 5),
                  column_text(r, 6)};
        all[c.saga_id].add(c);
        return Status::Ok();
      });
  if (!st.ok()) return st;
  st = query(
      "SELECT timer_id, saga_id, due_ms, kind, step, attempt, compensation FROM timers "
      "ORDER BY due_ms, timer_id",
      [&](sqlite3_stmt* r) {
        Timer t{column_text(r, 0), column_text(r, 1), from_ms(sqlite3_column_int64(r, 2))};
        const std::string kind = column_text(r, 3);
        if (kind == kTimerKinds[1]) {
          t.kind = TimerKind::kTimeout;
        } else if (kind == kTimerKinds[2]) {
          t.kind = TimerKind::kRetry;
        } else {
          return Status::Corruption("timer " + t.id + ": unknown kind '" + kind + "'");
        }
        t.step = sqlite3_column_int(r, 4);
        t.attempt = sqlite3_column_int(r, 5);
        t.compensation = sqlite3_column_int(r, 6) != 0;
        all[t.saga_id].arm(t);
        return Status::Ok();
      });
  if (!st.ok()) return st;
  // Finished sagas keep nothing pending (the engine dropped such rows at its next start).
  if (Status p = prepare(&update_pending,
                         "UPDATE saga_state SET pending = ?2 WHERE saga_id = ?1 AND snapshot IS "
                         "NOT NULL");
      !p.ok())
    return p;
  for (const auto& [id, pending] : all) {
    const std::string bytes = encode_pending(pending);
    Bind b(update_pending.get());
    b.text(id).blob(bytes);
    if (st = run(update_pending.get(), b, "migration 5"); !st.ok()) return st;
  }
  update_pending.reset();
  return exec("DROP TABLE outbox; DROP TABLE timers;", "migration 5");
}

Status SqliteStore::commit(const WriteBatch& batch) {
  for (const SagaWrite& w : batch.sagas) {
    if (w.state.id.empty()) return Status::InvalidArgument("commit: saga write without an id");
  }
  if (batch.empty()) return Status::Ok();
  std::lock_guard lock(impl_->mu);
  if (impl_->options.read_only) {
    return Status::FailedPrecondition(impl_->options.path + ": store is read-only");
  }
  Status st = impl_->write(batch);
  // Some errors roll back by themselves; otherwise undo whatever part of the batch was written.
  if (!st.ok() && !sqlite3_get_autocommit(impl_->h())) {
    impl_->run(impl_->rollback.get(), "rollback");
  }
  return st;
}

// ---------------------------------------------------------------------------------------------
// Reads.

Status SqliteStore::Impl::read_recovery(Recovery* out) {
  Pending pending;
  Status st =
      rows(select_active.get(), Bind(select_active.get()), "read saga_state", [&](sqlite3_stmt* s) {
        const std::string id = column_text(s, 0);
        auto state = decode_snapshot(column_text(s, 1));
        if (!state.ok()) {
          return Status::Corruption("saga " + id + ": " + state.status().message());
        }
        if (state->id != id) {
          return Status::Corruption("saga " + id + ": snapshot of " + state->id);
        }
        if (Status p = decode_pending(column_text(s, 2), id, &pending); !p.ok()) return p;
        out->active.push_back(std::move(state).value());
        std::move(pending.outbox.begin(), pending.outbox.end(), std::back_inserter(out->outbox));
        std::move(pending.timers.begin(), pending.timers.end(), std::back_inserter(out->timers));
        return Status::Ok();
      });
  if (!st.ok()) return st;
  std::sort(out->timers.begin(), out->timers.end(), [](const Timer& a, const Timer& b) {
    return a.due != b.due ? a.due < b.due : a.id < b.id;
  });
  return Status::Ok();
}

Result<Recovery> SqliteStore::recover() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->select_active) {
    return Status::FailedPrecondition(impl_->options.path + ": schema version " +
                                      std::to_string(impl_->version) +
                                      " is older than this build's; open it for writing first");
  }
  if (Status st = impl_->exec("BEGIN", "begin read"); !st.ok()) return st;
  Recovery out;
  Status st = impl_->read_recovery(&out);
  impl_->exec(st.ok() ? "COMMIT" : "ROLLBACK", "end read");
  if (!st.ok()) return st;
  return out;
}

Result<std::vector<Event>> SqliteStore::events(const std::string& saga_id) {
  Impl& r = impl_->for_reads();
  std::lock_guard lock(r.mu);
  sqlite3_stmt* stmt = r.select_events.get();
  std::vector<Event> out;
  Status st = r.rows(stmt, Bind(stmt).text(saga_id), "read events", [&](sqlite3_stmt* s) {
    Event e;
    e.seq = static_cast<uint32_t>(sqlite3_column_int64(s, 0));
    const std::string type = column_text(s, 1);
    if (!parse_event_name(type, &e.type)) {
      return Status::Corruption("saga " + saga_id + " event " + std::to_string(e.seq) +
                                ": unknown type '" + type + "'");
    }
    e.step = sqlite3_column_int(s, 2);
    e.attempt = sqlite3_column_int(s, 3);
    e.compensation = sqlite3_column_int(s, 4) != 0;
    e.at = from_ms(sqlite3_column_int64(s, 5));
    e.value = sqlite3_column_int64(s, 6);
    e.detail = column_text(s, 7);
    e.data = column_text(s, 8);
    e.trace = column_text(s, 9);
    e.fingerprint = column_text(s, 10);
    out.push_back(std::move(e));
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

Result<std::optional<SagaSummary>> SqliteStore::find(const std::string& saga_id) {
  Impl& r = impl_->for_reads();
  std::lock_guard lock(r.mu);
  sqlite3_stmt* stmt = r.select_summary.get();
  std::optional<SagaSummary> out;
  Status st = r.rows(stmt, Bind(stmt).text(saga_id), "find saga", [&](sqlite3_stmt* s) {
    out.emplace();
    return read_summary(s, &*out);
  });
  if (!st.ok()) return st;
  return out;
}

namespace {
// Binds the status, type and since filters from ?1.
Bind& bind_filter(Bind& b, const ListFilter& filter) {
  if (filter.status) {
    b.text(status_name(*filter.status));
  } else {
    b.null();
  }
  b.text(filter.definition);
  return b;
}
void bind_time(Bind& b, const std::optional<TimePoint>& t) {
  if (t) {
    b.i64(to_ms(*t));
  } else {
    b.null();
  }
}
}  // namespace

Result<std::vector<SagaSummary>> SqliteStore::list(const ListFilter& filter) {
  Impl& r = impl_->for_reads();
  std::lock_guard lock(r.mu);
  sqlite3_stmt* stmt = r.select_list.get();
  Bind b(stmt);
  bind_filter(b, filter);
  const auto max = static_cast<size_t>(std::numeric_limits<int64_t>::max());
  b.i64(static_cast<int64_t>(std::min(filter.limit, max)));
  bind_time(b, filter.updated_since);
  bind_time(b, filter.after ? std::optional<TimePoint>(filter.after->first) : std::nullopt);
  static const std::string kNone;
  b.text(filter.after ? filter.after->second : kNone);  // bound without a copy: must outlive
  std::vector<SagaSummary> out;
  Status st = r.rows(stmt, b, "list sagas",
                     [&](sqlite3_stmt* s) { return read_summary(s, &out.emplace_back()); });
  if (!st.ok()) return st;
  return out;
}

Result<uint64_t> SqliteStore::count(const ListFilter& filter) {
  Impl& r = impl_->for_reads();
  std::lock_guard lock(r.mu);
  sqlite3_stmt* stmt = r.count_list.get();
  Bind b(stmt);
  bind_filter(b, filter);
  bind_time(b, filter.updated_since);
  uint64_t n = 0;
  Status st = r.rows(stmt, b, "count sagas", [&](sqlite3_stmt* s) {
    n = static_cast<uint64_t>(sqlite3_column_int64(s, 0));
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return n;
}

namespace {
DefinitionRecord read_definition(sqlite3_stmt* s) {
  return {column_text(s, 1), sqlite3_column_int(s, 2), column_text(s, 0), column_text(s, 3),
          from_ms(sqlite3_column_int64(s, 4))};
}
}  // namespace

Result<std::optional<DefinitionRecord>> SqliteStore::definition(const std::string& fingerprint) {
  Impl& r = impl_->for_reads();
  std::lock_guard lock(r.mu);
  std::optional<DefinitionRecord> out;
  sqlite3_stmt* stmt = r.select_definition.get();
  if (stmt == nullptr) return out;  // a log older than recorded definitions
  Status st = r.rows(stmt, Bind(stmt).text(fingerprint), "read definition", [&](sqlite3_stmt* s) {
    out = read_definition(s);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

Result<std::vector<DefinitionRecord>> SqliteStore::definitions() {
  Impl& r = impl_->for_reads();
  std::lock_guard lock(r.mu);
  std::vector<DefinitionRecord> out;
  sqlite3_stmt* stmt = r.select_definitions.get();
  if (stmt == nullptr) return out;
  Status st = r.rows(stmt, Bind(stmt), "read definitions", [&](sqlite3_stmt* s) {
    out.push_back(read_definition(s));
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace saga
