// SqliteParticipantStore: a participant's record (participant_store.hpp) in the participant's
// own SQLite file, beside its business tables, so that a handler's business rows, the record
// and the reply commit in one local transaction. Its tables are named saga_participant_*; the
// file's user_version is left to the application.
//
//   auto store = saga::SqliteParticipantStore::open({.path = "inventory.db"});
//   (*store)->run([](saga::SqliteTx& tx) { tx.exec("CREATE TABLE IF NOT EXISTS ..."); });
//   saga::Participant inventory(bus, "inventory", **store);
//   inventory.on("ReserveItems", [](const saga::CommandContext& c, saga::ParticipantTx& t) {
//     saga::SqliteTx::of(t).exec("INSERT INTO reservations VALUES(?1)", {c.saga_id});
//     return saga::ParticipantReply::ok();
//   });
//
// Thread-safety: all methods may be called from any thread; transactions are serialised (one
// connection). Readers in other connections or processes see only committed data (WAL).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "saga/participant_store.hpp"
#include "saga/sqlite_store.hpp"

struct sqlite3;

namespace saga {

// A statement parameter: integer, real, text or NULL.
class SqlArg {
 public:
  enum class Kind : uint8_t { kNull, kInt, kReal, kText };
  SqlArg(std::nullptr_t) : kind_(Kind::kNull) {}               // NOLINT: implicit by design
  SqlArg(int v) : kind_(Kind::kInt), i_(v) {}                  // NOLINT
  SqlArg(long v) : kind_(Kind::kInt), i_(v) {}                 // NOLINT
  SqlArg(long long v) : kind_(Kind::kInt), i_(v) {}            // NOLINT
  SqlArg(double v) : kind_(Kind::kReal), d_(v) {}              // NOLINT
  SqlArg(std::string_view v) : kind_(Kind::kText), s_(v) {}    // NOLINT
  SqlArg(const char* v) : kind_(Kind::kText), s_(v) {}         // NOLINT
  SqlArg(const std::string& v) : kind_(Kind::kText), s_(v) {}  // NOLINT
  Kind kind() const { return kind_; }
  int64_t integer() const { return i_; }
  double real() const { return d_; }
  std::string_view text() const { return s_; }

 private:
  Kind kind_;
  int64_t i_ = 0;
  double d_ = 0;
  std::string_view s_;
};

// Thrown by SqliteTx's helpers; the participant SDK catches it, rolls the handler back and
// answers `failed`.
class SqliteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a handler is given when its participant runs on SqliteParticipantStore: the
// participant's connection, inside the participant's transaction. Do not BEGIN, COMMIT or
// ROLLBACK through it: the SDK owns the transaction (a handler that ends it is answered failed).
class SqliteTx : public ParticipantTx {
 public:
  // REQUIRES: tx was given by a participant on SqliteParticipantStore (else std::logic_error).
  static SqliteTx& of(ParticipantTx& tx);
  sqlite3* db() const { return db_; }
  // Runs one statement with ?1..?n bound to args; returns the rows it changed.
  int exec(std::string_view sql, std::initializer_list<SqlArg> args = {});
  // The first column of the first row, or nullopt when there is no row (or it is NULL).
  std::optional<int64_t> query_int(std::string_view sql, std::initializer_list<SqlArg> args = {});
  std::optional<std::string> query_text(std::string_view sql,
                                        std::initializer_list<SqlArg> args = {});

  struct Cache;  // prepared statements, owned by the store

 private:
  friend class SqliteParticipantStore;
  SqliteTx(sqlite3* db, Cache* cache) : db_(db), cache_(cache) {}
  sqlite3* db_;
  Cache* cache_;
};

class SqliteParticipantStore : public ParticipantStore {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the file (WAL; options.sync as for the event log, FULL by default) and
  // creates the saga_participant_* tables. read_only is not supported.
  static Result<std::unique_ptr<SqliteParticipantStore>> open(const SqliteOptions& options);
  ~SqliteParticipantStore() override;

  // Runs fn in a transaction of its own, serialised with the handlers: schema set-up, queries
  // of the business tables. A SqliteError (or any exception) from fn rolls it back.
  Status run(const std::function<void(SqliteTx&)>& fn);

  Result<std::unique_ptr<Transaction>> begin() override;
  Result<std::vector<Message>> unsent() override;

  struct Impl;

 private:
  explicit SqliteParticipantStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace saga
