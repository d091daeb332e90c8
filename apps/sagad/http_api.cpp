#include "http_api.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <charconv>
#include <future>
#include <nlohmann/json.hpp>
#include <random>

#include "saga/limits.hpp"
#include "saga/replay.hpp"
#include "saga/timeline.hpp"
#include "saga_json.hpp"

namespace sagad {

using json = nlohmann::json;
using saga::Status;

namespace {

constexpr auto kAcceptTimeout = std::chrono::seconds(30);  // a start not committed by then: 503

int http_code(const Status& st) {
  // An engine closed under the request (a reload or a stop): try again.
  if (st.code() == saga::Code::kFailedPrecondition && st.message() == "engine is closed")
    return 503;
  switch (st.code()) {
    case saga::Code::kInvalidArgument:
      return 400;
    case saga::Code::kNotFound:
      return 404;
    case saga::Code::kAlreadyExists:
    case saga::Code::kFailedPrecondition:
      return 409;
    case saga::Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

void send_json(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int code, const std::string& message) {
  send_json(res, code, {{"error", message}});
}

// "250ms", "5s", "2m" -> milliseconds; -1 when malformed.
int64_t parse_duration_ms(const std::string& text) {
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (...) {
    return -1;
  }
  if (n < 0 || n > 1000000000) return -1;
  const std::string unit = text.substr(used);
  if (unit == "ms") return n;
  if (unit == "s") return n * 1000;
  if (unit == "m") return n * 60'000;
  return -1;
}

// Digits only, the whole text; -1 otherwise.
int64_t whole_number(const std::string& text) {
  int64_t v = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() && ptr == text.data() + text.size() && v >= 0 ? v : -1;
}

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::optional<std::string> unhex(const std::string& s) {
  if (s.size() % 2) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int v = 0;
    for (size_t k = i; k < i + 2; ++k) {
      const char c = s[k];
      v = v * 16 + (c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -999);
    }
    if (v < 0) return std::nullopt;
    out += static_cast<char>(v);
  }
  return out;
}

std::string random_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

// A JSON object body: nesting bounded before it is parsed.
std::optional<json> parse_body(const httplib::Request& req, httplib::Response& res, bool required) {
  if (req.body.empty()) {
    if (required) send_error(res, 400, "the request needs a JSON object body");
    return required ? std::nullopt : std::optional<json>(json::object());
  }
  if (saga::json_depth(req.body) > saga::kMaxJsonDepth) {
    send_error(res, 400,
               "body nested deeper than " + std::to_string(saga::kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    send_error(res, 400, "body is not a JSON object");
    return std::nullopt;
  }
  return j;
}

std::string route_of(const httplib::Request& req) {
  const std::string& p = req.path;
  if (p.rfind("/sagas/", 0) == 0) {
    if (req.method == "POST" && p.size() > 6 && p.ends_with("/retry")) return "/sagas/{id}/retry";
    if (req.method == "POST" && p.size() > 6 && p.ends_with("/abort")) return "/sagas/{id}/abort";
    return "/sagas/{id}";
  }
  for (const char* r : {"/sagas", "/definitions", "/healthz", "/readyz", "/metrics"})
    if (p == r) return r;
  return "other";
}

}  // namespace

HttpApi::HttpApi(Daemon& daemon, const Config& config, Log& log)
    : daemon_(daemon), config_(config), log_(log), server_(std::make_unique<httplib::Server>()) {
  // One thread per keep-alive connection: a start that waits for its outcome holds its thread.
  server_->new_task_queue = [] { return new httplib::ThreadPool(256); };
  server_->set_payload_max_length(config.max_body_bytes);
  server_->set_keep_alive_max_count(1'000'000);
  server_->set_keep_alive_timeout(5);  // an idle connection holds a worker: not for long
  server_->set_read_timeout(10);
  server_->set_tcp_nodelay(true);  // small JSON answers: no Nagle delay
  server_->set_socket_options([this](socket_t sock) {
    // SO_REUSEADDR only: the library's default adds SO_REUSEPORT, which would let a second
    // process on this port take a share of the connections (and their tokens).
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = sock;  // the listening socket, before it is bound
  });
  routes();
}

HttpApi::~HttpApi() = default;

saga::Result<int> HttpApi::bind() {
  std::string host;
  int port = 0;
  if (Status st = split_address(config_.http, &host, &port); !st.ok()) return st;
  const int bound =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound < 0) return Status::Unavailable("cannot listen on " + config_.http);
  // The library listens with a backlog of 5: many clients connecting at once would see their
  // handshakes dropped and retried a second later. Listening again only raises the backlog.
  if (listen_fd_ >= 0) ::listen(listen_fd_, 1024);
  return bound;
}

bool HttpApi::serve() {
  const bool ok = server_->listen_after_bind();
  if (!ok) failed_ = true;
  return ok;
}

bool HttpApi::running() const {
  return server_->is_running();
}

void HttpApi::stop() {
  server_->stop();
}

void HttpApi::routes() {
  httplib::Server& s = *server_;
  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    if (config_.token.empty()) return true;
    const std::string want = "Bearer " + config_.token;
    const std::string got = req.get_header_value("Authorization");
    unsigned diff = got.size() != want.size();
    for (size_t i = 0; i < want.size(); ++i) diff |= (i < got.size() ? got[i] : 0) ^ want[i];
    if (diff == 0) return true;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "this endpoint needs 'Authorization: Bearer <token>'");
    return false;
  };
  auto engine_or_503 = [this](httplib::Response& res) {
    auto e = daemon_.engine();
    if (!e) send_error(res, 503, "sagad is not taking work now (reloading or stopping)");
    return e;
  };

  // Runs before a body is read: the token first, then only plain bodies whose length is
  // declared (the library limits those; a chunked or compressed body could grow unbounded).
  s.set_pre_routing_handler([=](const httplib::Request& req, httplib::Response& res) {
    using R = httplib::Server::HandlerResponse;
    if (req.method != "POST") return R::Unhandled;
    if (!authorized(req, res)) return R::Handled;
    if (req.has_header("Transfer-Encoding")) {
      send_error(res, 411, "send the body with a Content-Length, not chunked");
      return R::Handled;
    }
    if (req.has_header("Content-Encoding")) {
      send_error(res, 415, "compressed bodies are not accepted");
      return R::Handled;
    }
    return R::Unhandled;
  });

  s.Post("/sagas", [=, this](const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req, res, true);
    if (!body) return;
    const json& b = *body;
    if (!b.contains("type") || !b["type"].is_string())
      return send_error(res, 400, "'type' (the saga type, a string) is required");
    if (b.contains("id") && (!b["id"].is_string() || b["id"].get<std::string>().empty()))
      return send_error(res, 400, "'id' must be a non-empty string (or absent: sagad picks one)");
    if (b.contains("data") && !b["data"].is_object())
      return send_error(res, 400, "'data' must be a JSON object");
    if (b.contains("version") && !b["version"].is_number_integer())
      return send_error(res, 400, "'version' must be a whole number");
    int64_t wait_ms = 0;
    if (req.has_param("wait")) {
      wait_ms = parse_duration_ms(req.get_param_value("wait"));
      if (wait_ms < 0)
        return send_error(res, 400, "?wait must be a duration such as 500ms, 5s or 1m");
      if (wait_ms > config_.max_wait_ms)
        return send_error(res, 400,
                          "?wait may be at most " + std::to_string(config_.max_wait_ms) + "ms");
    }
    auto engine = engine_or_503(res);
    if (!engine) return;
    saga::StartRequest start;
    start.definition = b["type"].get<std::string>();
    start.version = b.value("version", 0);
    start.saga_id = b.contains("id") ? b["id"].get<std::string>() : random_id();
    start.input = b.contains("data") ? b["data"].dump() : "{}";
    start.traceparent = req.get_header_value("traceparent");
    struct Waits {
      std::promise<Status> accepted;
      std::promise<saga::Result<saga::SagaOutcome>> outcome;
    };
    auto waits = std::make_shared<Waits>();
    auto accepted = waits->accepted.get_future();
    auto outcome = waits->outcome.get_future();
    start.on_accepted = [waits](Status st) { waits->accepted.set_value(std::move(st)); };
    const std::string id = start.saga_id, type = start.definition;
    engine->start(std::move(start), [waits](saga::Result<saga::SagaOutcome> r) {
      waits->outcome.set_value(std::move(r));
    });
    engine.reset();  // a reload may replace it while this waits
    // One wake-up when the saga ends in time: an outcome means its start was committed.
    if (wait_ms > 0 &&
        outcome.wait_for(std::chrono::milliseconds(wait_ms)) == std::future_status::ready) {
      auto r = outcome.get();
      if (r.ok()) return send_json(res, 200, saga::apps::outcome_json(*r));
    }
    if (accepted.wait_for(kAcceptTimeout) != std::future_status::ready)
      return send_json(res, 503,
                       {{"error", "the start of saga '" + id +
                                      "' was not committed in time; start it again (same id)"},
                        {"id", id}});
    if (Status st = accepted.get(); !st.ok()) {
      const int code = st.code() == saga::Code::kNotFound ? 400 : http_code(st);
      return send_json(res, code, {{"error", st.message()}, {"id", id}});
    }
    log_.debug("saga accepted", {{"saga_id", id}, {"type", type}});
    res.set_header("Location", "/sagas/" + id);
    send_json(res, 202, {{"id", id}, {"status", "running"}, {"location", "/sagas/" + id}});
  });

  s.Get(R"(/sagas/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    auto found = daemon_.store().find(id);
    if (!found.ok()) return send_error(res, http_code(found.status()), found.status().message());
    if (!found->has_value()) return send_error(res, 404, "no saga '" + id + "'");
    auto events = daemon_.store().events(id);
    if (!events.ok()) return send_error(res, 500, events.status().message());
    const saga::SagaState state = saga::state_at(id, *events, events->size());
    const auto& started = events->front();
    auto def = daemon_.definition_for(started.fingerprint, state.definition, state.version);
    json j = saga::apps::summary_json(**found);
    j["context"] = saga::apps::data_value(state.context);
    if (!state.trace.empty()) j["trace"] = state.trace;
    j["events"] = json::array();
    for (const auto& e : *events) j["events"].push_back(saga::apps::event_json(id, e, def.get()));
    send_json(res, 200, j);
  });

  s.Get("/sagas", [this](const httplib::Request& req, httplib::Response& res) {
    saga::ListFilter f;
    f.limit = 50;
    if (req.has_param("status")) {
      saga::SagaStatus st;
      if (!saga::parse_status_name(req.get_param_value("status"), &st))
        return send_error(res, 400,
                          "?status must be running, compensating, completed, compensated, "
                          "stuck or aborted");
      f.status = st;
    }
    if (req.has_param("type")) f.definition = req.get_param_value("type");
    if (req.has_param("limit")) {
      const int64_t n = whole_number(req.get_param_value("limit"));
      if (n < 1 || n > 1000) return send_error(res, 400, "?limit must be 1 to 1000");
      f.limit = static_cast<size_t>(n);
    }
    if (req.has_param("cursor")) {
      auto raw = unhex(req.get_param_value("cursor"));
      const auto nl = raw ? raw->find('\n') : std::string::npos;
      if (nl == std::string::npos) return send_error(res, 400, "?cursor is not one sagad gave");
      const int64_t ms = whole_number(raw->substr(0, nl));
      if (ms < 0) return send_error(res, 400, "?cursor is not one sagad gave");
      f.after = std::pair{saga::from_ms(ms), raw->substr(nl + 1)};
    }
    auto page = daemon_.store().list(f);
    if (!page.ok()) return send_error(res, 500, page.status().message());
    json j{{"sagas", json::array()}, {"next_cursor", nullptr}};
    for (const auto& sum : *page) j["sagas"].push_back(saga::apps::summary_json(sum));
    if (page->size() == f.limit)
      j["next_cursor"] =
          hex(std::to_string(saga::to_ms(page->back().started_at)) + "\n" + page->back().id);
    send_json(res, 200, j);
  });

  auto operator_action = [=, this](bool retry) {
    return [=, this](const httplib::Request& req, httplib::Response& res) {
      auto body = parse_body(req, res, !retry);
      if (!body) return;
      if (body->contains("reason") && !(*body)["reason"].is_string())
        return send_error(res, 400, "'reason' must be a string");
      const std::string reason = body->value("reason", "");
      if (!retry && reason.empty())
        return send_error(res, 400, "an abort needs a 'reason' (kept in the saga's log)");
      auto engine = engine_or_503(res);
      if (!engine) return;
      const std::string id = req.matches[1];
      auto done = retry ? engine->retry(id, reason) : engine->abort(id, reason);
      engine.reset();
      if (done.wait_for(kAcceptTimeout) != std::future_status::ready)
        return send_error(res, 503, "not committed in time");
      if (Status st = done.get(); !st.ok()) return send_error(res, http_code(st), st.message());
      log_.info(retry ? "operator retry" : "operator abort", {{"saga_id", id}, {"reason", reason}});
      send_json(res, 200, {{"id", id}, {"action", retry ? "retry" : "abort"}, {"reason", reason}});
    };
  };
  s.Post(R"(/sagas/(.+)/retry)", operator_action(true));
  s.Post(R"(/sagas/(.+)/abort)", operator_action(false));

  s.Get("/definitions", [this](const httplib::Request&, httplib::Response& res) {
    json j = json::array();
    for (const saga::Definition& d : daemon_.definitions()) {
      json steps = json::array();
      for (const auto& st : d.steps) steps.push_back(st.name);
      j.push_back({{"type", d.name},
                   {"version", d.version},
                   {"fingerprint", saga::fingerprint(d)},
                   {"steps", steps},
                   {"text", saga::definition_text(d)}});
    }
    send_json(res, 200, j);
  });
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const std::string why = daemon_.not_ready();
    if (why.empty()) return send_json(res, 200, {{"status", "ready"}});
    send_json(res, 503, {{"status", "not ready"}, {"why", why}});
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(daemon_.metrics().scrape(), "text/plain; version=0.0.4");
  });

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 404   ? "no route " + req.method + " " + req.path
                      : res.status == 413 ? "body larger than the limit"
                                          : "HTTP " + std::to_string(res.status);
    send_error(res, res.status, msg);
  });
  s.set_exception_handler(
      [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log_.error("request failed", {{"path", req.path}, {"error", what}});
        send_error(res, 500, "internal error: " + what);
      });
  s.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    daemon_.metrics().http_request(route_of(req), res.status);
  });
}

}  // namespace sagad
