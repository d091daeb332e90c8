// sagad: the saga orchestrator as its own process. Configuration from a TOML file and flags;
// an HTTP API to start, inspect, retry and abort sagas; Prometheus metrics; SIGTERM/SIGINT stop
// it cleanly (a second one at once), SIGHUP reloads the definitions.
#include <signal.h>
#include <unistd.h>
#include <atomic>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "cli.hpp"
#include "config.hpp"
#include "daemon.hpp"
#include "http_api.hpp"
#include "log.hpp"

int main(int argc, char** argv) {
  // Signals are taken by the thread below, never by another.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  CLI::App app{"sagad: the saga orchestrator as a process, with an HTTP API", "sagad"};
  saga::apps::add_version(app, "sagad");
  sagad::Config config;
  std::string config_file;
  app.add_option("--config", config_file, "A TOML file (see sagad.example.toml)")
      ->check(CLI::ExistingFile);
  // Flags override the file: read them into their own copies first.
  std::string definitions, db, transport, participants, http, log_level, log_format, token_file,
      bootstrap;
  int partitions = 0;
  app.add_option("--definitions", definitions, "A .saga file or a directory of them");
  app.add_option("--db", db, "The saga log (SQLite file; created 0600)");
  app.add_option("--transport", transport, "memory (samples' participants in-process) or kafka")
      ->check(CLI::IsMember({"memory", "kafka"}));
  app.add_option("--bootstrap", bootstrap,
                 "With --transport kafka: the brokers (kafka \"bootstrap.servers\")");
  app.add_option("--participants", participants,
                 "With --transport memory: samples (default), workload (saga-bench's) or none")
      ->check(CLI::IsMember({"samples", "workload", "none"}));
  app.add_option("--http", http, "HOST:PORT to serve on (default 127.0.0.1:8080; port 0: any)");
  app.add_option("--partitions", partitions, "Engine partitions (threads)")
      ->check(CLI::Range(1, 64));
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--token-file", token_file,
                 "A file holding the bearer token that POST endpoints require (or set "
                 "SAGAD_TOKEN)");
  app.footer(
      "Exit codes: 0 clean stop, 1 failure, 2 usage or configuration error.\n"
      "Signals: SIGTERM/SIGINT stop (a second one at once), SIGHUP reloads the definitions.");
  if (auto code = saga::apps::parse_command_line(app, argc, argv)) return *code;
  if (!config_file.empty()) {
    if (saga::Status st = sagad::load_toml(config_file, &config); !st.ok()) {
      std::cerr << "sagad: " << st.message() << "\n";
      return 2;
    }
  }
  if (!definitions.empty()) config.definitions = definitions;
  if (!db.empty()) config.db = db;
  if (!transport.empty()) config.transport = transport;
  if (!participants.empty()) config.participants = participants;
  if (!http.empty()) config.http = http;
  if (partitions) config.partitions = partitions;
  if (!log_level.empty()) config.log_level = log_level;
  if (!log_format.empty()) config.log_format = log_format;
  if (!token_file.empty()) config.token_file = token_file;
  if (!bootstrap.empty()) config.kafka["bootstrap.servers"] = bootstrap;
  if (saga::Status st = sagad::finish(&config); !st.ok()) {
    std::cerr << "sagad: " << st.message() << "\n";
    return 2;
  }

  sagad::Log log(config.log_level, config.log_format);
  saga::Result<std::unique_ptr<sagad::Daemon>> daemon = saga::Status::Unavailable("not opened");
  try {
    daemon = sagad::Daemon::open(config, log);
  } catch (const std::exception& e) {  // a filesystem error, say
    daemon = saga::Status::Unavailable(e.what());
  }
  if (!daemon.ok()) {
    log.error("cannot start: " + daemon.status().message());
    return 1;
  }
  sagad::HttpApi api(**daemon, config, log);
  auto port = api.bind();
  if (!port.ok()) {
    log.error(port.status().message());
    return 1;
  }
  // Tests and scripts read the address from this first line on stdout.
  std::cout << "listening=" << config.http.substr(0, config.http.rfind(':')) << ":" << *port
            << std::endl;
  log.info("sagad started", {{"http", std::to_string(*port)},
                             {"db", config.db},
                             {"transport", config.transport},
                             {"partitions", std::to_string(config.partitions)},
                             {"definitions", std::to_string((*daemon)->definitions().size())},
                             {"auth", config.token.empty() ? "none" : "bearer token"}});

  // A repeated line's count is logged when its minute is over, even if the line stops coming.
  std::atomic<bool> ticking{true};
  std::thread ticker([&] {
    while (ticking.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      log.tick();
    }
  });
  std::thread signals([&] {
    // A stop asked for during startup waits until the server runs (stop() before that is lost).
    while (!api.running() && !api.failed())
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (;;) {
      int sig = 0;
      if (sigwait(&sigs, &sig) != 0) continue;
      if (sig == SIGHUP) {
        saga::Status st = (*daemon)->reload();
        if (st.ok()) {
          log.info("definitions reloaded",
                   {{"definitions", std::to_string((*daemon)->definitions().size())}});
        } else {
          log.error("reload refused, the running definitions stay: " + st.message());
        }
        continue;
      }
      log.info(std::string("stopping on ") + strsignal(sig) + "; a second signal stops at once");
      // A second SIGTERM/SIGINT while the engine finishes: leave at once (a SIGHUP now is not
      // a reason to skip the clean stop).
      std::thread([] {
        sigset_t again;
        sigemptyset(&again);
        sigaddset(&again, SIGTERM);
        sigaddset(&again, SIGINT);
        int s = 0;
        sigwait(&again, &s);
        _exit(1);
      }).detach();
      api.stop();  // no new connections or requests
      // Commit what is decided and stop the engine now: requests still waiting for an outcome
      // are answered (202: the saga goes on after a restart) instead of holding the stop.
      (void)(*daemon)->close();  // main reports how it went: it asks again below
      return;
    }
  });
  const bool served = api.serve();
  if (!served) kill(getpid(), SIGTERM);  // lets the signal thread finish
  signals.join();
  saga::Status st = (*daemon)->close();
  if (!st.ok()) log.error("stop: " + st.message());
  ticking = false;
  ticker.join();
  log.info("sagad stopped");
  log.flush();  // with the counts of lines repeated since they were logged
  return served && st.ok() ? 0 : 1;
}
