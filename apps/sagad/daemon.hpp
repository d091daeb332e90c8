// What sagad runs: the saga log, a transport, optionally the samples' participants in-process
// (memory transport), and an engine over them that SIGHUP replaces with one that knows the
// reloaded definitions (running sagas continue: the new engine recovers them).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "saga/engine.hpp"
#include "saga/sqlite_store.hpp"
#include "topics.hpp"

namespace sagad {

// Every saga in `path` (a .saga file, or the *.saga files of a directory). A file with an
// error, a name and version defined twice, or no saga at all is an error.
saga::Result<std::vector<saga::Definition>> load_definitions(const std::string& path);

class Daemon {
 public:
  static saga::Result<std::unique_ptr<Daemon>> open(const Config& config, Log& log);
  ~Daemon();

  // The engine taking work now; null while a reload swaps engines or after close().
  std::shared_ptr<saga::Engine> engine();
  std::vector<saga::Definition> definitions();
  saga::EventStore& store() { return *store_; }
  Metrics& metrics() { return metrics_; }
  // Empty when ready; else why not.
  std::string not_ready();
  // The definition a saga ran, for naming its events: the registered one with its fingerprint,
  // else the one the log recorded. Null when neither is known.
  std::shared_ptr<const saga::Definition> definition_for(const std::string& fingerprint,
                                                         const std::string& name, int version);

  // SIGHUP: reads the definitions again; new names and versions apply to new sagas. A changed
  // definition under a name and version already loaded is refused (it needs a new version).
  saga::Status reload();
  // SIGTERM: commits what is decided, stops the engine, flushes the producer.
  saga::Status close();

  struct Parts;

 private:
  Daemon(const Config& config, Log& log);
  saga::Status open_engine(std::vector<saga::Definition> defs);

  Config config_;
  Log& log_;
  Metrics metrics_;
  std::unique_ptr<saga::SqliteStore> store_;
  std::unique_ptr<Parts> parts_;    // transport, clock, in-process participants
  std::unique_ptr<Topics> topics_;  // kafka: request and outcome topics
  std::mutex mu_;
  std::atomic<bool> closed_{false};
  std::mutex close_mu_;
  saga::Status close_status_;  // what the first close() found, told again to later calls
  std::shared_ptr<saga::Engine> engine_;
  std::vector<saga::Definition> defs_;
  std::mutex cache_mu_;
  std::map<std::string, std::shared_ptr<const saga::Definition>> recorded_;  // by fingerprint
};

}  // namespace sagad
