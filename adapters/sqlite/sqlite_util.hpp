// Small helpers over the SQLite C API shared by the SQLite adapters. Internal to saga_sqlite.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "saga/sqlite_store.hpp"
#include "saga/status.hpp"

namespace saga::sqlite_detail {

inline const char* synchronous_pragma(SqliteOptions::Sync sync) {
  switch (sync) {
    case SqliteOptions::Sync::kFull:
      return "PRAGMA synchronous=FULL";
    case SqliteOptions::Sync::kNormal:
      return "PRAGMA synchronous=NORMAL";
    case SqliteOptions::Sync::kOff:
      break;
  }
  return "PRAGMA synchronous=OFF";
}

// Busy, locked, I/O and disk-full errors can pass; everything else is a bug or bad data.
inline Status sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const bool has_msg = db && sqlite3_extended_errcode(db) == rc;
  std::string msg = "sqlite " + std::string(what) + ": " +
                    (has_msg ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) + " (" +
                    std::to_string(rc) + ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
      return Status::Unavailable(std::move(msg));
    default:
      return Status::Internal(std::move(msg));
  }
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Binds parameters 1..n in order; remembers the first failure. Strings are bound SQLITE_STATIC:
// the caller keeps them alive until the statement is reset.
class Bind {
 public:
  explicit Bind(sqlite3_stmt* s) : s_(s) {}
  Bind& text(std::string_view v) {
    return check(sqlite3_bind_text64(s_, ++i_, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  Bind& blob(std::string_view v) {
    return check(sqlite3_bind_blob64(s_, ++i_, v.data(), v.size(), SQLITE_STATIC));
  }
  Bind& i64(int64_t v) { return check(sqlite3_bind_int64(s_, ++i_, v)); }
  Bind& null() { return check(sqlite3_bind_null(s_, ++i_)); }
  int rc() const { return rc_; }

 private:
  Bind& check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3_stmt* s_;
  int i_ = 0;
  int rc_ = SQLITE_OK;
};

// Resets and unbinds a statement at scope exit, so it is ready for the next use.
class Use {
 public:
  explicit Use(sqlite3_stmt* s) : s_(s) {}
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

 private:
  sqlite3_stmt* s_;
};

inline std::string column_text(sqlite3_stmt* s, int i) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(s, i));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s, i))) : std::string();
}

}  // namespace saga::sqlite_detail
