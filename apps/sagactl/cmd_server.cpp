// sagactl retry / abort: operator actions, through a running sagad's HTTP API (--server URL).
#include <httplib.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "saga_json.hpp"

namespace sagactl {

namespace {

struct ServerOptions {
  std::string id;
  std::string server;
  std::string token_file;
  std::string reason;
};

// The bearer token: from --token-file, else SAGAD_TOKEN; never from argv.
std::string token(const ServerOptions& o) {
  auto t = saga::apps::read_token(o.token_file);
  if (!t.ok()) {
    std::cerr << "sagactl: " << t.status().message() << "\n";
    throw CLI::RuntimeError(kExitFailure);
  }
  return *t;
}

void act(const ServerOptions& o, const std::string& action) {
  httplib::Client cli(o.server);
  cli.set_read_timeout(60);
  httplib::Headers headers;
  if (const std::string t = token(o); !t.empty()) headers.emplace("Authorization", "Bearer " + t);
  nlohmann::json body = nlohmann::json::object();
  if (!o.reason.empty()) body["reason"] = o.reason;
  // The id is a path segment: escape what a URL cannot carry as is.
  std::string path = "/sagas/" + saga::apps::path_segment(o.id) + "/" + action;
  auto r = cli.Post(path.c_str(), headers,
                    body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json");
  if (!r) {
    std::cerr << "sagactl: no answer from " << o.server << ": " << httplib::to_string(r.error())
              << "\n";
    throw CLI::RuntimeError(kExitFailure);
  }
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200) {
    std::cerr << "sagactl: " << action << " " << o.id << ": HTTP " << r->status << ": "
              << (j.is_object() && j.contains("error") && j["error"].is_string()
                      ? j["error"].get<std::string>()
                      : r->body.substr(0, 500))
              << "\n";
    throw CLI::RuntimeError(kExitFailure);
  }
  std::cout << o.id << ": " << action << " accepted"
            << (o.reason.empty() ? "" : " (" + o.reason + ")") << "\n";
}

void add_server(CLI::App* cmd, ServerOptions& o) {
  cmd->add_option("id", o.id, "Saga id")->required();
  cmd->add_option("--server", o.server, "sagad's address, e.g. http://127.0.0.1:8080")->required();
  cmd->add_option("--token-file", o.token_file,
                  "A file holding sagad's bearer token (or set SAGAD_TOKEN)");
}

}  // namespace

void add_server_commands(CLI::App& app) {
  static ServerOptions retry_opts, abort_opts;
  CLI::App* retry = app.add_subcommand(
      "retry", "A stuck saga retries what it got stuck on (through sagad's HTTP API)");
  add_server(retry, retry_opts);
  retry->add_option("--reason", retry_opts.reason, "Why (kept in the saga's log)");
  retry->callback([] { act(retry_opts, "retry"); });

  CLI::App* abort =
      app.add_subcommand("abort", "A stuck saga ends aborted, for good (through sagad's HTTP API)");
  add_server(abort, abort_opts);
  abort->add_option("--reason", abort_opts.reason, "Why (kept in the saga's log)")->required();
  abort->callback([] { act(abort_opts, "abort"); });
}

}  // namespace sagactl
