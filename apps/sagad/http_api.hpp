// sagad's HTTP API (Boost.Beast on one event-driven thread), JSON in and out; README "sagad"
// lists the routes.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "config.hpp"
#include "daemon.hpp"
#include "log.hpp"

namespace sagad {

class HttpApi {
 public:
  HttpApi(Daemon& daemon, const Config& config, Log& log);
  ~HttpApi();
  // Binds config.http; returns the port (the one chosen when the config says 0).
  saga::Result<int> bind();
  // Serves until stop() and every request taken is answered; false when it could not run.
  bool serve();
  // Stops taking connections and requests; requests in progress are answered.
  void stop();
  bool running() const { return running_.load(); }
  bool failed() const { return failed_.load(); }

  struct Core;  // the server, shared with callbacks the engine may hold longer

 private:
  std::shared_ptr<Core> core_;
  std::atomic<bool> running_{false};
  std::atomic<bool> failed_{false};  // serve() could not run
};

}  // namespace sagad
