// SqliteParticipantStore: the participant's record in its own SQLite file. One connection
// behind a mutex; a Transaction holds the mutex from begin() until it is committed or dropped.
#include "saga/sqlite_participant_store.hpp"

#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <unordered_map>

#include "sqlite_util.hpp"

namespace saga {

using namespace sqlite_detail;

struct SqliteTx::Cache {
  std::unordered_map<std::string, StmtPtr> stmts;
};

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS saga_participant_schema(version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS saga_participant_steps(
  saga_id TEXT NOT NULL, step TEXT NOT NULL, action_done INTEGER NOT NULL,
  compensated INTEGER NOT NULL, outcome INTEGER NOT NULL, data TEXT NOT NULL,
  error TEXT NOT NULL, PRIMARY KEY(saga_id, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS saga_participant_replies(
  id INTEGER PRIMARY KEY, command_id TEXT NOT NULL UNIQUE, saga_id TEXT NOT NULL,
  channel TEXT NOT NULL, reply TEXT NOT NULL, sent INTEGER NOT NULL, at_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS saga_participant_unsent ON saga_participant_replies(id)
  WHERE sent = 0;
)sql";

[[noreturn]] void throw_error(sqlite3* db, int rc, std::string_view sql) {
  throw SqliteError(sqlite_error(db, rc, sql).message());
}

sqlite3_stmt* prepared(sqlite3* db, SqliteTx::Cache& cache, std::string_view sql) {
  auto it = cache.stmts.find(std::string(sql));
  if (it != cache.stmts.end()) return it->second.get();
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StmtPtr s(raw);
  if (rc != SQLITE_OK) throw_error(db, rc, sql);
  if (raw == nullptr) throw SqliteError("sqlite: empty statement");
  return cache.stmts.emplace(std::string(sql), std::move(s)).first->second.get();
}

void bind_all(sqlite3* db, sqlite3_stmt* s, std::initializer_list<SqlArg> args,
              std::string_view sql) {
  int i = 0;
  for (const SqlArg& a : args) {
    ++i;
    int rc = SQLITE_OK;
    switch (a.kind()) {
      case SqlArg::Kind::kNull:
        rc = sqlite3_bind_null(s, i);
        break;
      case SqlArg::Kind::kInt:
        rc = sqlite3_bind_int64(s, i, a.integer());
        break;
      case SqlArg::Kind::kReal:
        rc = sqlite3_bind_double(s, i, a.real());
        break;
      case SqlArg::Kind::kText:
        rc =
            sqlite3_bind_text64(s, i, a.text().data(), a.text().size(), SQLITE_STATIC, SQLITE_UTF8);
        break;
    }
    if (rc != SQLITE_OK) throw_error(db, rc, sql);
  }
}

// A reply row: the channel it goes to, and its envelope.
Result<Message> decode_row(sqlite3_stmt* q) {
  auto m = decode_json(column_text(q, 1));
  if (m.ok()) m->channel = column_text(q, 0);
  return m;
}

}  // namespace

SqliteTx& SqliteTx::of(ParticipantTx& tx) {
  auto* p = dynamic_cast<SqliteTx*>(&tx);
  if (p == nullptr) throw std::logic_error("SqliteTx::of: the participant is not on SQLite");
  return *p;
}

int SqliteTx::exec(std::string_view sql, std::initializer_list<SqlArg> args) {
  sqlite3_stmt* s = prepared(db_, *cache_, sql);
  Use use(s);
  bind_all(db_, s, args, sql);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) throw_error(db_, rc, sql);
  return sqlite3_changes(db_);
}

namespace {
// The first column of the first row, read by `read`, or nullopt (no row, or NULL).
template <typename F>
auto first_value(sqlite3* db, SqliteTx::Cache& cache, std::string_view sql,
                 std::initializer_list<SqlArg> args, F&& read)
    -> std::optional<decltype(read(static_cast<sqlite3_stmt*>(nullptr)))> {
  sqlite3_stmt* s = prepared(db, cache, sql);
  Use use(s);
  bind_all(db, s, args, sql);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) throw_error(db, rc, sql);
  if (sqlite3_column_type(s, 0) == SQLITE_NULL) return std::nullopt;
  return read(s);
}
}  // namespace

std::optional<int64_t> SqliteTx::query_int(std::string_view sql,
                                           std::initializer_list<SqlArg> args) {
  return first_value(db_, *cache_, sql, args, [](sqlite3_stmt* s) {
    return static_cast<int64_t>(sqlite3_column_int64(s, 0));
  });
}

std::optional<std::string> SqliteTx::query_text(std::string_view sql,
                                                std::initializer_list<SqlArg> args) {
  return first_value(db_, *cache_, sql, args, [](sqlite3_stmt* s) { return column_text(s, 0); });
}

struct SqliteParticipantStore::Impl {
  std::unique_ptr<sqlite3, DbCloser> db;  // closed after the statements below
  SqliteTx::Cache cache;                  // the handlers' statements
  std::mutex mu;                          // held by the open transaction
  SqliteTx tx{nullptr, nullptr};

  sqlite3* h() const { return db.get(); }
  Status error(int rc, std::string_view what) const { return sqlite_error(h(), rc, what); }
  Status exec(const char* sql) {
    int rc = sqlite3_exec(h(), sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::Ok() : error(rc, sql);
  }
  // Runs a record statement through the cache, turning exceptions into Status.
  template <typename F>
  Status guard(F&& f) {
    try {
      f();
      return Status::Ok();
    } catch (const SqliteError& e) {
      return Status::Unavailable(e.what());
    }
  }
  void rollback() {
    if (!sqlite3_get_autocommit(h())) sqlite3_exec(h(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
};

namespace {

class SqliteTransaction : public ParticipantStore::Transaction {
 public:
  explicit SqliteTransaction(SqliteParticipantStore::Impl& s) : s_(s), lock_(s.mu) {}
  ~SqliteTransaction() override {
    if (open_) s_.rollback();
  }
  Status open() {
    Status st = s_.exec("BEGIN IMMEDIATE");
    open_ = st.ok();
    return st;
  }

  ParticipantTx& business() override { return s_.tx; }

  Result<StepRecord> step(const std::string& saga_id, const std::string& step) override {
    StepRecord rec;
    Status st = s_.guard([&] {
      sqlite3_stmt* q = prepared(s_.h(), s_.cache,
                                 "SELECT action_done, compensated, outcome, data, error FROM "
                                 "saga_participant_steps WHERE saga_id = ?1 AND step = ?2");
      Use use(q);
      bind_all(s_.h(), q, {saga_id, step}, "steps");
      int rc = sqlite3_step(q);
      if (rc == SQLITE_DONE) return;
      if (rc != SQLITE_ROW) throw_error(s_.h(), rc, "select step");
      rec.action_done = sqlite3_column_int(q, 0) != 0;
      rec.compensated = sqlite3_column_int(q, 1) != 0;
      const int outcome = sqlite3_column_int(q, 2);
      rec.action_reply.outcome =
          outcome >= 0 && outcome <= 2 ? static_cast<ReplyOutcome>(outcome) : ReplyOutcome::kFailed;
      rec.action_reply.data = column_text(q, 3);
      rec.action_reply.error = column_text(q, 4);
    });
    if (!st.ok()) return st;
    return rec;
  }

  Result<std::optional<Message>> reply(const std::string& command_id) override {
    std::optional<Message> found;
    Status st = s_.guard([&] {
      sqlite3_stmt* q =
          prepared(s_.h(), s_.cache,
                   "SELECT channel, reply FROM saga_participant_replies WHERE command_id = ?1");
      Use use(q);
      bind_all(s_.h(), q, {command_id}, "replies");
      int rc = sqlite3_step(q);
      if (rc == SQLITE_DONE) return;
      if (rc != SQLITE_ROW) throw_error(s_.h(), rc, "select reply");
      auto m = decode_row(q);
      if (!m.ok()) throw SqliteError(m.status().message());
      found = std::move(*m);
    });
    if (!st.ok())
      return Status::Corruption("recorded reply of " + command_id + ": " + st.message());
    return found;
  }

  Status savepoint() override { return s_.exec("SAVEPOINT saga_handler"); }
  Status rollback_to_savepoint() override {
    if (sqlite3_get_autocommit(s_.h())) return ended_by_handler();
    Status st = s_.exec("ROLLBACK TO saga_handler");
    return st.ok() ? s_.exec("RELEASE saga_handler") : st;
  }

  Status record(const std::string& saga_id, const std::string& step, const StepRecord& rec,
                const Message& reply) override {
    if (sqlite3_get_autocommit(s_.h())) return ended_by_handler();
    std::string encoded;
    try {
      encoded = encode_json(reply);
    } catch (const std::exception& e) {
      return Status::InvalidArgument(std::string("reply cannot be encoded: ") + e.what());
    }
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return s_.guard([&] {
      s_.tx.exec(
          "INSERT INTO saga_participant_steps(saga_id, step, action_done, compensated, outcome, "
          "data, error) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(saga_id, step) DO UPDATE "
          "SET action_done = excluded.action_done, compensated = excluded.compensated, "
          "outcome = excluded.outcome, data = excluded.data, error = excluded.error",
          {saga_id, step, rec.action_done ? 1 : 0, rec.compensated ? 1 : 0,
           static_cast<int>(rec.action_reply.outcome), rec.action_reply.data,
           rec.action_reply.error});
      s_.tx.exec(
          "INSERT INTO saga_participant_replies(command_id, saga_id, channel, reply, sent, at_ms) "
          "VALUES(?1, ?2, ?3, ?4, 0, ?5)",
          {reply.command_id, saga_id, reply.channel, encoded, static_cast<long long>(now)});
    });
  }

  Status mark_sent(const std::vector<std::string>& ids) override {
    return s_.guard([&] {
      for (const auto& id : ids)
        s_.tx.exec("UPDATE saga_participant_replies SET sent = 1 WHERE command_id = ?1", {id});
    });
  }

  Status commit() override {
    if (sqlite3_get_autocommit(s_.h())) return ended_by_handler();
    Status st = s_.exec("COMMIT");
    if (st.ok()) open_ = false;
    return st;
  }

 private:
  Status ended_by_handler() {
    open_ = false;
    return Status::Internal(
        "the participant's transaction was ended inside a handler (COMMIT or ROLLBACK)");
  }
  SqliteParticipantStore::Impl& s_;
  std::unique_lock<std::mutex> lock_;
  bool open_ = false;
};

}  // namespace

SqliteParticipantStore::SqliteParticipantStore(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

SqliteParticipantStore::~SqliteParticipantStore() {
  std::lock_guard l(impl_->mu);
  impl_->cache.stmts.clear();
}

Result<std::unique_ptr<SqliteParticipantStore>> SqliteParticipantStore::open(
    const SqliteOptions& options) {
  if (options.read_only)
    return Status::InvalidArgument("SqliteParticipantStore: read_only is not supported");
  auto impl = std::make_unique<Impl>();
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(options.path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           options.vfs.empty() ? nullptr : options.vfs.c_str());
  impl->db.reset(raw);
  if (rc != SQLITE_OK) {
    return Status::Unavailable("cannot open " + options.path + ": " +
                               (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  impl->tx = SqliteTx(raw, &impl->cache);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  sqlite3_db_config(raw, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  Status st = impl->exec("PRAGMA journal_mode=WAL");
  if (st.ok()) st = impl->exec(synchronous_pragma(options.sync));
  if (st.ok()) st = impl->exec("BEGIN IMMEDIATE");
  if (st.ok()) st = impl->exec(kSchema);
  if (st.ok()) {
    st = impl->guard([&] {
      auto v = impl->tx.query_int("SELECT max(version) FROM saga_participant_schema");
      if (!v) {
        impl->tx.exec("INSERT INTO saga_participant_schema(version) VALUES(?1)", {kSchemaVersion});
      } else if (*v > kSchemaVersion) {
        throw SqliteError(options.path + ": participant record version " + std::to_string(*v) +
                          " is newer than this build supports (" + std::to_string(kSchemaVersion) +
                          ")");
      }
    });
  }
  if (st.ok()) st = impl->exec("COMMIT");
  if (!st.ok()) {
    impl->rollback();
    impl->cache.stmts.clear();
    return Status(st.code(), options.path + ": " + st.message());
  }
  return std::unique_ptr<SqliteParticipantStore>(new SqliteParticipantStore(std::move(impl)));
}

Status SqliteParticipantStore::run(const std::function<void(SqliteTx&)>& fn) {
  SqliteTransaction t(*impl_);
  if (Status st = t.open(); !st.ok()) return st;
  try {
    fn(impl_->tx);
  } catch (const std::exception& e) {
    return Status::Unavailable(e.what());  // ~SqliteTransaction rolls back
  }
  return t.commit();
}

Result<std::unique_ptr<ParticipantStore::Transaction>> SqliteParticipantStore::begin() {
  auto t = std::make_unique<SqliteTransaction>(*impl_);
  if (Status st = t->open(); !st.ok()) return st;
  return std::unique_ptr<Transaction>(std::move(t));
}

Result<std::vector<Message>> SqliteParticipantStore::unsent() {
  std::vector<Message> out;
  Status st = run([&](SqliteTx& tx) {
    sqlite3_stmt* q = prepared(tx.db(), impl_->cache,
                               "SELECT channel, reply FROM saga_participant_replies "
                               "WHERE sent = 0 ORDER BY id");
    Use use(q);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
      auto m = decode_row(q);
      if (m.ok()) out.push_back(std::move(*m));  // an undecodable row cannot be sent anyway
    }
    if (rc != SQLITE_DONE) throw_error(tx.db(), rc, "select unsent");
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace saga
