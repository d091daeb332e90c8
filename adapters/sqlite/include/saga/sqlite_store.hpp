// SqliteStore: the durable EventStore on one SQLite file (WAL). One commit() is one
// transaction: events, saga snapshots, and each saga's commands in flight and timers together.
//
// Thread-safety: all methods are safe to call concurrently. A writer has two connections, each
// behind its own mutex: commit() writes through one, the reads go through a read-only second
// one (WAL), so that they never wait for a commit in progress. An in-memory database has one.
#pragma once

#include <memory>
#include <string>

#include "saga/event_store.hpp"

namespace saga {

struct SqliteOptions {  // also used by SqliteParticipantStore
  std::string path;
  // synchronous=FULL (fsync before commit returns) is the default and what the workload
  // requires; kNormal trades the last transactions on power loss for speed.
  enum class Sync { kFull, kNormal, kOff };
  Sync sync = Sync::kFull;
  int busy_timeout_ms = 5000;
  bool read_only = false;  // sagactl inspection: no migration, no writes
  // Name of a registered SQLite VFS to open the file through (empty: SQLite's default).
  std::string vfs;
};

class SqliteStore : public EventStore {
 public:
  static constexpr int kSchemaVersion = 6;

  // Opens or creates the file and migrates its schema to kSchemaVersion. A file written by a
  // newer version is refused with kFailedPrecondition.
  static Result<std::unique_ptr<SqliteStore>> open(const SqliteOptions& options);
  ~SqliteStore() override;

  Status commit(const WriteBatch& batch) override;
  Result<Recovery> recover() override;
  Result<std::vector<Event>> events(const std::string& saga_id) override;
  Result<std::optional<SagaSummary>> find(const std::string& saga_id) override;
  Result<std::vector<SagaSummary>> list(const ListFilter& filter) override;
  Result<uint64_t> count(const ListFilter& filter) override;
  Result<std::optional<DefinitionRecord>> definition(const std::string& fingerprint) override;
  Result<std::vector<DefinitionRecord>> definitions() override;

  int schema_version() const;

  struct Impl;

 private:
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Snapshot encoding (cereal portable binary); exposed for tests and tools.
std::string encode_snapshot(const SagaState& state);
Result<SagaState> decode_snapshot(const std::string& bytes);

}  // namespace saga
