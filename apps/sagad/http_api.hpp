// sagad's HTTP API (cpp-httplib), JSON in and out; README "sagad" lists the routes.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "config.hpp"
#include "daemon.hpp"
#include "log.hpp"

namespace httplib {
class Server;
}

namespace sagad {

class HttpApi {
 public:
  HttpApi(Daemon& daemon, const Config& config, Log& log);
  ~HttpApi();
  // Binds config.http; returns the port (the one chosen when the config says 0).
  saga::Result<int> bind();
  // Serves until stop(); returns false when the server could not run.
  bool serve();
  // Stops taking connections; requests in progress finish.
  void stop();
  bool running() const;
  bool failed() const { return failed_.load(); }

 private:
  void routes();
  Daemon& daemon_;
  const Config& config_;
  Log& log_;
  std::unique_ptr<httplib::Server> server_;
  int listen_fd_ = -1;
  std::atomic<bool> failed_{false};  // serve() could not run
};

}  // namespace sagad
