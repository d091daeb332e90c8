#include "http_api.hpp"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <vector>

#include "saga/limits.hpp"
#include "saga/replay.hpp"
#include "saga/timeline.hpp"
#include "saga_json.hpp"

namespace sagad {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using saga::Status;

namespace {

constexpr auto kAcceptTimeout = std::chrono::seconds(30);  // a start not committed by then: 503
constexpr auto kReadTimeout = std::chrono::seconds(10);    // a request, or an answer, in transit
constexpr auto kIdleTimeout = std::chrono::seconds(5);  // a keep-alive connection between requests
constexpr auto kLinger = std::chrono::seconds(2);       // reading a refused body before closing
constexpr size_t kHeaderLimit = 16 << 10;               // request line and headers together
constexpr int kSlowThreads = 4;  // reads of the log, scrapes, operator actions

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

struct Reply {
  int status = 200;
  std::string body;
  const char* content_type = "application/json";
  std::vector<std::pair<const char*, std::string>> headers;
};

Reply json_reply(int code, const json& body) {
  return {code, body.dump(-1, ' ', false, json::error_handler_t::replace)};
}

Reply error_reply(int code, const std::string& message) {
  return json_reply(code, {{"error", message}});
}

// A request as the routes see it: path and query decoded.
struct Req {
  http::verb method = http::verb::unknown;
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;
  std::string body;
  std::string traceparent;
  const std::string* param(std::string_view key) const {
    for (const auto& [k, v] : params)
      if (k == key) return &v;
    return nullptr;
  }
};

// %XX escapes (and '+' for a space in a query); a '%' not followed by two hex digits stays as
// it is (ids may contain one).
std::string percent_decode(std::string_view s, bool plus_is_space) {
  auto digit = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const int hi = s[i] == '%' && i + 2 < s.size() ? digit(s[i + 1]) : -1;
    const int lo = hi >= 0 ? digit(s[i + 2]) : -1;
    if (lo >= 0) {
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

// "/sagas?status=stuck&limit=5" -> path and params.
void split_target(std::string_view target, Req* req) {
  const size_t q = target.find('?');
  req->path = percent_decode(target.substr(0, q), false);
  if (q == std::string_view::npos) return;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    req->params.emplace_back(
        percent_decode(pair.substr(0, eq), true),
        percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true));
  }
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

// A JSON object body: nesting bounded before it is parsed. Sets *error when it is not one.
std::optional<json> parse_body(const std::string& body, bool required, Reply* error) {
  if (body.empty()) {
    if (required) *error = error_reply(400, "the request needs a JSON object body");
    return required ? std::nullopt : std::optional<json>(json::object());
  }
  if (saga::json_depth(body) > saga::kMaxJsonDepth) {
    *error = error_reply(
        400, "body nested deeper than " + std::to_string(saga::kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = error_reply(400, "body is not a JSON object");
    return std::nullopt;
  }
  return j;
}

// The metrics' route label.
const char* route_of(http::verb method, std::string_view path) {
  if (path.starts_with("/sagas/")) {
    if (method == http::verb::post && path.size() > 6 && path.ends_with("/retry"))
      return "/sagas/{id}/retry";
    if (method == http::verb::post && path.size() > 6 && path.ends_with("/abort"))
      return "/sagas/{id}/abort";
    return "/sagas/{id}";
  }
  for (const char* r : {"/sagas", "/definitions", "/healthz", "/readyz", "/metrics"})
    if (path == r) return r;
  return "other";
}

// "/sagas/ID/retry" -> "ID" for suffix "/retry"; empty when the path is not that.
std::string id_between(const std::string& path, std::string_view suffix) {
  constexpr std::string_view prefix = "/sagas/";
  if (!path.starts_with(prefix) || !path.ends_with(suffix)) return {};
  if (path.size() <= prefix.size() + suffix.size()) return {};
  return path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

class Connection;

}  // namespace

// The listening socket, the connections and the routes. Every connection's I/O and every
// answer is written on the one thread that runs `ioc`; reads of the log and other slow work
// run on `slow` and post their answer back.
struct HttpApi::Core : std::enable_shared_from_this<Core> {
  Core(Daemon& d, const Config& c, Log& l) : daemon(d), config(c), log(l) {}

  Daemon& daemon;
  const Config& config;
  Log& log;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_pause{ioc};
  net::thread_pool slow{kSlowThreads};
  net::thread_pool actions{kSlowThreads};  // retry and abort wait for their commit
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  // Only on the io thread:
  bool stopping = false;
  int busy = 0;  // requests read and not yet answered
  std::vector<std::weak_ptr<Connection>> connections;

  void accept();
  void stop_now();
  void maybe_finish() {
    if (stopping && busy == 0) work.reset();  // run() returns once the last answer is written
  }

  bool authorized(const http::request_header<>& h, Reply* error) const {
    if (config.token.empty()) return true;
    const std::string want = "Bearer " + config.token;
    const auto it = h.find(http::field::authorization);
    const std::string_view got = it == h.end() ? std::string_view() : sv(it->value());
    unsigned diff = got.size() != want.size();
    for (size_t i = 0; i < want.size(); ++i) diff |= (i < got.size() ? got[i] : 0) ^ want[i];
    if (diff == 0) return true;
    *error = error_reply(401, "this endpoint needs 'Authorization: Bearer <token>'");
    error->headers.emplace_back("WWW-Authenticate", "Bearer");
    return false;
  }

  // Routes answered on the slow pool.
  Reply handle(const Req& req);
  Reply get_saga(const std::string& id);
  Reply list(const Req& req);
  Reply operator_action(const Req& req, const std::string& id, bool retry);
  Reply definitions();
  // POST /sagas, on the io thread: it does not block, the engine's callbacks answer.
  void start(std::shared_ptr<Connection> conn, Req req);
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpApi::Core& core, tcp::socket socket) : core_(core), stream_(std::move(socket)) {}

  void read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    // The parser would refuse a long Content-Length with the header, before the token is
    // checked: the limit is applied once the header has been looked at.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(first_ ? kReadTimeout : kIdleTimeout);
    first_ = false;
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  // Io thread. Writes the answer, then reads the next request or closes.
  void reply(Reply r) {
    res_ = {};
    res_.version(version_);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) res_.set(name, value);
    res_.keep_alive(keep_alive_ && !core_.stopping);
    res_.body() = std::move(r.body);
    res_.prepare_payload();  // Content-Length of the body, also for a HEAD
    if (head_) res_.body().clear();
    core_.daemon.metrics().http_request(route_, r.status);
    stream_.expires_after(kReadTimeout);
    serializer_.emplace(res_);
    if (head_) serializer_->split(true);
    auto done = [self = shared_from_this()](beast::error_code ec, size_t) { self->on_written(ec); };
    if (head_) {
      http::async_write_header(stream_, *serializer_, std::move(done));
    } else {
      http::async_write(stream_, *serializer_, std::move(done));
    }
  }

  // On a stop: a connection between requests is closed; one in a request closes after it.
  void close_if_idle() {
    if (!busy_) close();
  }

 private:
  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    if (core_.stopping || !stream_.socket().is_open()) return close();  // not taken: a stop
    begin();
    const auto& h = parser_->get();
    Reply refused;
    if (h.method() == http::verb::post) {
      // Before a body is read: the token first, then only plain bodies of a declared length.
      bool ok = core_.authorized(h, &refused);
      if (ok && h.find(http::field::transfer_encoding) != h.end()) {
        refused = error_reply(411, "send the body with a Content-Length, not chunked");
        ok = false;
      }
      if (ok && h.find(http::field::content_encoding) != h.end()) {
        refused = error_reply(415, "compressed bodies are not accepted");
        ok = false;
      }
      if (!ok) {
        keep_alive_ = false;  // the body stays unread
        return reply(std::move(refused));
      }
    }
    if (auto n = parser_->content_length(); n && *n > core_.config.max_body_bytes) {
      keep_alive_ = false;
      return reply(error_reply(413, "body larger than the limit of " +
                                        std::to_string(core_.config.max_body_bytes) + " bytes"));
    }
    if (h.method() == http::verb::unknown) {
      keep_alive_ = false;
      return reply(error_reply(400, "unsupported method " + std::string(sv(h.method_string()))));
    }
    parser_->body_limit(core_.config.max_body_bytes);
    if (parser_->is_done()) return on_body({});
    stream_.expires_after(kReadTimeout);
    if (h.version() >= 11 && beast::iequals(h[http::field::expect], "100-continue")) {
      // The client waits for this before it sends the body.
      continue_ = {http::status::continue_, h.version()};
      return http::async_write(stream_, continue_,
                               [self = shared_from_this()](beast::error_code ec, size_t) {
                                 if (ec) return self->on_body(ec);
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    http::request<http::string_body> msg = parser_->release();
    Req req;
    req.method = msg.method();
    split_target(sv(msg.target()), &req);
    if (req.method == http::verb::head) req.method = http::verb::get;  // answered without body
    route_ = route_of(req.method, req.path);
    if (auto it = msg.find("traceparent"); it != msg.end()) req.traceparent = sv(it->value());
    req.body = std::move(msg.body());
    if (req.method == http::verb::post && req.path == "/sagas") {
      try {
        return core_.start(shared_from_this(), std::move(req));
      } catch (const std::exception& e) {  // memory, say: this request fails, the server goes on
        core_.log.error("request failed", {{"path", "/sagas"}, {"error", e.what()}});
        return reply(error_reply(500, std::string("internal error: ") + e.what()));
      }
    }
    if (req.method == http::verb::get && req.path == "/healthz")
      return reply(json_reply(200, {{"status", "ok"}}));
    const bool action = req.method == http::verb::post;
    net::post(action ? core_.actions : core_.slow, [self = shared_from_this(),
                                                    req = std::move(req)] {
      Reply r = self->core_.handle(req);
      net::post(self->core_.ioc, [self, r = std::move(r)]() mutable { self->reply(std::move(r)); });
    });
  }

  void on_read_error(beast::error_code ec) {
    const bool malformed =
        ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (!malformed) {
      if (busy_) end();  // the connection went away in the middle of a body
      return close();    // went away, timed out, or closed by a stop
    }
    if (!busy_) begin();
    keep_alive_ = false;
    if (ec == http::error::header_limit)
      return reply(error_reply(
          431, "request line and headers larger than " + std::to_string(kHeaderLimit) + " bytes"));
    if (ec == http::error::body_limit) return reply(error_reply(413, "body larger than the limit"));
    reply(error_reply(400, "malformed HTTP request: " + ec.message()));
  }

  void on_written(beast::error_code ec) {
    end();
    if (ec) return close();
    if (!res_.keep_alive() || core_.stopping) return linger();
    read();
  }

  // A client may still be sending a body we refused: stop writing, read what comes for a
  // moment and drop it, so that it gets to read the answer (closing now would reset the
  // connection under it).
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);
    drain();
  }

  void drain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(16 << 10),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->close();
                              self->drain();
                            });
  }

  void begin() {
    busy_ = true;
    ++core_.busy;
    const auto& h = parser_->get();
    keep_alive_ = h.keep_alive();
    version_ = h.version() == 10 ? 10 : 11;
    head_ = h.method() == http::verb::head;
    const std::string_view target = sv(h.target());
    route_ = route_of(head_ ? http::verb::get : h.method(), target.substr(0, target.find('?')));
  }

  void end() {
    if (!busy_) return;
    busy_ = false;
    --core_.busy;
    core_.maybe_finish();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  HttpApi::Core& core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  http::response<http::empty_body> continue_;
  bool first_ = true, busy_ = false, keep_alive_ = true, head_ = false;
  unsigned version_ = 11;
  const char* route_ = "other";
};

// One POST /sagas between the engine's callbacks and its answer; io thread only.
struct StartCall : std::enable_shared_from_this<StartCall> {
  StartCall(HttpApi::Core& c, std::shared_ptr<Connection> conn_)
      : core(c), conn(std::move(conn_)), timer(c.ioc) {}
  HttpApi::Core& core;
  std::shared_ptr<Connection> conn;  // released once answered
  net::steady_timer timer;
  std::string id, type;
  bool waiting = false;   // within ?wait
  bool released = false;  // the engine holds no callback any more
  std::optional<Status> accepted;
  std::optional<saga::Result<saga::SagaOutcome>> outcome;
  // Within ?wait a committed start needs no answer of its own: the engine's thread notes it
  // here instead of waking the io thread (read when the wait ends).
  // When the wait ends first, the flag is cleared and both sides look at the other's flag
  // after writing their own, so one of them sees the commit.
  std::atomic<bool> quiet_accept{false};
  std::atomic<bool> accepted_quietly{false};

  void end_wait() {
    waiting = false;
    quiet_accept = false;
  }

  void arm(std::chrono::milliseconds d) {
    timer.expires_after(d);
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || !self->conn) return;
      if (self->waiting) {
        self->end_wait();
        self->arm(kAcceptTimeout);
        return self->step();
      }
      if (self->accepted_quietly.load()) return self->step();  // committed just now: 202
      self->answer(json_reply(503, {{"error", "the start of saga '" + self->id +
                                                  "' was not committed in time; start it again "
                                                  "(same id)"},
                                    {"id", self->id}}));
    });
  }

  void step() {
    if (!conn) return;
    if (!accepted && accepted_quietly.load()) accepted = Status::Ok();
    if (outcome && outcome->ok() && waiting)
      return answer(json_reply(200, saga::apps::outcome_json(**outcome)));
    if (outcome && !outcome->ok()) end_wait();
    if (accepted && !accepted->ok()) {
      const int code = accepted->code() == saga::Code::kNotFound ? 400 : http_code(*accepted);
      return answer(json_reply(code, {{"error", accepted->message()}, {"id", id}}));
    }
    if (released && !accepted)
      return answer(json_reply(503, {{"error", "sagad stopped before the start of saga '" + id +
                                                   "' was committed; start it again (same id)"},
                                     {"id", id}}));
    if ((waiting && !released) || !accepted) return;
    core.log.debug("saga accepted", {{"saga_id", id}, {"type", type}});
    const std::string location = "/sagas/" + saga::apps::path_segment(id);
    Reply r = json_reply(202, {{"id", id}, {"status", "running"}, {"location", location}});
    r.headers.emplace_back("Location", location);
    answer(std::move(r));
  }

  void answer(Reply r) {
    timer.cancel();
    auto c = std::move(conn);
    conn = nullptr;
    c->reply(std::move(r));
  }
};

// Carries the engine's callbacks to the io thread; when the engine lets go of them, says so.
struct Relay {
  std::shared_ptr<HttpApi::Core> core;
  std::shared_ptr<StartCall> call;
  std::atomic<bool> ended{false};  // the outcome was posted: nothing comes after it
  template <class F>
  void post(F f) {
    net::post(core->ioc, [call = call, f = std::move(f)]() mutable { f(*call); });
  }
  ~Relay() {
    if (!call || ended.load()) return;
    net::post(core->ioc, [call = std::move(call)] {
      call->released = true;
      call->step();
    });
  }
};

}  // namespace

void HttpApi::Core::accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (!self->acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors, say: try again shortly rather than spin.
      self->accept_pause.expires_after(std::chrono::milliseconds(50));
      self->accept_pause.async_wait([self](beast::error_code e) {
        if (!e) self->accept();
      });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // small JSON answers: no Nagle delay
    auto conn = std::make_shared<Connection>(*self, std::move(socket));
    auto& cs = self->connections;
    if (cs.size() >= 64 && cs.size() == cs.capacity())
      std::erase_if(cs, [](const auto& w) { return w.expired(); });
    cs.push_back(conn);
    conn->read();
    self->accept();
  });
}

void HttpApi::Core::stop_now() {
  if (stopping) return;
  stopping = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  accept_pause.cancel();
  for (auto& w : connections)
    if (auto c = w.lock()) c->close_if_idle();
  connections.clear();
  maybe_finish();
}

void HttpApi::Core::start(std::shared_ptr<Connection> conn, Req req) {
  Reply error;
  auto body = parse_body(req.body, true, &error);
  if (!body) return conn->reply(std::move(error));
  const json& b = *body;
  if (!b.contains("type") || !b["type"].is_string())
    return conn->reply(error_reply(400, "'type' (the saga type, a string) is required"));
  if (b.contains("id") && (!b["id"].is_string() || b["id"].get<std::string>().empty()))
    return conn->reply(
        error_reply(400, "'id' must be a non-empty string (or absent: sagad picks one)"));
  if (b.contains("data") && !b["data"].is_object())
    return conn->reply(error_reply(400, "'data' must be a JSON object"));
  if (b.contains("version") && !b["version"].is_number_integer())
    return conn->reply(error_reply(400, "'version' must be a whole number"));
  int64_t wait_ms = 0;
  if (const std::string* w = req.param("wait")) {
    wait_ms = parse_duration_ms(*w);
    if (wait_ms < 0)
      return conn->reply(error_reply(400, "?wait must be a duration such as 500ms, 5s or 1m"));
    if (wait_ms > config.max_wait_ms)
      return conn->reply(
          error_reply(400, "?wait may be at most " + std::to_string(config.max_wait_ms) + "ms"));
  }
  auto engine = daemon.engine();
  if (!engine)
    return conn->reply(error_reply(503, "sagad is not taking work now (reloading or stopping)"));
  saga::StartRequest start;
  start.definition = b["type"].get<std::string>();
  start.version = b.value("version", 0);
  start.saga_id = b.contains("id") ? b["id"].get<std::string>() : random_id();
  start.input = b.contains("data") ? b["data"].dump() : "{}";
  start.traceparent = std::move(req.traceparent);
  // The call gets the connection only once the engine has the start: if anything before
  // throws, the caller's 500 is the only answer (every callback runs later, on this thread).
  auto call = std::make_shared<StartCall>(*this, nullptr);
  call->id = start.saga_id;
  call->type = start.definition;
  call->waiting = wait_ms > 0;
  call->arm(wait_ms > 0 ? std::chrono::milliseconds(wait_ms) : kAcceptTimeout);
  auto relay = std::make_shared<Relay>();
  relay->core = shared_from_this();
  relay->call = call;
  call->quiet_accept = call->waiting;
  start.on_accepted = [relay](Status st) {
    if (st.ok()) {
      relay->call->accepted_quietly = true;
      if (relay->call->quiet_accept.load()) return;
    }
    relay->post([st = std::move(st)](StartCall& c) mutable {
      c.accepted = std::move(st);
      c.step();
    });
  };
  engine->start(std::move(start), [relay](saga::Result<saga::SagaOutcome> r) {
    relay->post([r = std::move(r)](StartCall& c) mutable {
      c.outcome = std::move(r);
      c.released = true;  // `done` is the engine's last call
      c.step();
    });
    relay->ended = true;
  });
  call->conn = std::move(conn);
}

Reply HttpApi::Core::handle(const Req& req) {
  try {
    const std::string& p = req.path;
    if (req.method == http::verb::post) {
      if (std::string id = id_between(p, "/retry"); !id.empty())
        return operator_action(req, id, true);
      if (std::string id = id_between(p, "/abort"); !id.empty())
        return operator_action(req, id, false);
    } else if (req.method == http::verb::get) {
      if (p == "/sagas") return list(req);
      if (std::string id = id_between(p, ""); !id.empty()) return get_saga(id);
      if (p == "/definitions") return definitions();
      if (p == "/readyz") {
        const std::string why = daemon.not_ready();
        if (why.empty()) return json_reply(200, {{"status", "ready"}});
        return json_reply(503, {{"status", "not ready"}, {"why", why}});
      }
      if (p == "/metrics") {
        Reply r{200, daemon.metrics().scrape()};
        r.content_type = "text/plain; version=0.0.4";
        return r;
      }
    }
    return error_reply(404, "no route " + std::string(sv(http::to_string(req.method))) + " " + p);
  } catch (const std::exception& e) {
    log.error("request failed", {{"path", req.path}, {"error", e.what()}});
    return error_reply(500, std::string("internal error: ") + e.what());
  }
}

Reply HttpApi::Core::get_saga(const std::string& id) {
  auto found = daemon.store().find(id);
  if (!found.ok()) return error_reply(http_code(found.status()), found.status().message());
  if (!found->has_value()) return error_reply(404, "no saga '" + id + "'");
  auto events = daemon.store().events(id);
  if (!events.ok()) return error_reply(500, events.status().message());
  const saga::SagaState state = saga::state_at(id, *events, events->size());
  const auto& started = events->front();
  auto def = daemon.definition_for(started.fingerprint, state.definition, state.version);
  json j = saga::apps::summary_json(**found);
  j["context"] = saga::apps::data_value(state.context);
  if (!state.trace.empty()) j["trace"] = state.trace;
  j["events"] = json::array();
  for (const auto& e : *events) j["events"].push_back(saga::apps::event_json(id, e, def.get()));
  return json_reply(200, j);
}

Reply HttpApi::Core::list(const Req& req) {
  saga::ListFilter f;
  f.limit = 50;
  if (const std::string* s = req.param("status")) {
    saga::SagaStatus st;
    if (!saga::parse_status_name(*s, &st))
      return error_reply(400,
                         "?status must be running, compensating, completed, compensated, "
                         "stuck or aborted");
    f.status = st;
  }
  if (const std::string* t = req.param("type")) f.definition = *t;
  if (const std::string* l = req.param("limit")) {
    const int64_t n = whole_number(*l);
    if (n < 1 || n > 1000) return error_reply(400, "?limit must be 1 to 1000");
    f.limit = static_cast<size_t>(n);
  }
  if (const std::string* c = req.param("cursor")) {
    auto raw = unhex(*c);
    const auto nl = raw ? raw->find('\n') : std::string::npos;
    if (nl == std::string::npos) return error_reply(400, "?cursor is not one sagad gave");
    const int64_t ms = whole_number(raw->substr(0, nl));
    if (ms < 0) return error_reply(400, "?cursor is not one sagad gave");
    f.after = std::pair{saga::from_ms(ms), raw->substr(nl + 1)};
  }
  auto page = daemon.store().list(f);
  if (!page.ok()) return error_reply(500, page.status().message());
  json j{{"sagas", json::array()}, {"next_cursor", nullptr}};
  for (const auto& sum : *page) j["sagas"].push_back(saga::apps::summary_json(sum));
  if (page->size() == f.limit)
    j["next_cursor"] =
        hex(std::to_string(saga::to_ms(page->back().started_at)) + "\n" + page->back().id);
  return json_reply(200, j);
}

Reply HttpApi::Core::operator_action(const Req& req, const std::string& id, bool retry) {
  Reply error;
  auto body = parse_body(req.body, !retry, &error);
  if (!body) return error;
  if (body->contains("reason") && !(*body)["reason"].is_string())
    return error_reply(400, "'reason' must be a string");
  const std::string reason = body->value("reason", "");
  if (!retry && reason.empty())
    return error_reply(400, "an abort needs a 'reason' (kept in the saga's log)");
  auto engine = daemon.engine();
  if (!engine) return error_reply(503, "sagad is not taking work now (reloading or stopping)");
  auto done = retry ? engine->retry(id, reason) : engine->abort(id, reason);
  engine.reset();  // a reload may replace it while this waits
  if (done.wait_for(kAcceptTimeout) != std::future_status::ready)
    return error_reply(503, "not committed in time");
  if (Status st = done.get(); !st.ok()) return error_reply(http_code(st), st.message());
  log.info(retry ? "operator retry" : "operator abort", {{"saga_id", id}, {"reason", reason}});
  return json_reply(200, {{"id", id}, {"action", retry ? "retry" : "abort"}, {"reason", reason}});
}

Reply HttpApi::Core::definitions() {
  json j = json::array();
  for (const saga::Definition& d : daemon.definitions()) {
    json steps = json::array();
    for (const auto& st : d.steps) steps.push_back(st.name);
    j.push_back({{"type", d.name},
                 {"version", d.version},
                 {"fingerprint", saga::fingerprint(d)},
                 {"steps", steps},
                 {"text", saga::definition_text(d)}});
  }
  return json_reply(200, j);
}

HttpApi::HttpApi(Daemon& daemon, const Config& config, Log& log)
    : core_(std::make_shared<Core>(daemon, config, log)) {}

HttpApi::~HttpApi() {
  core_->slow.join();  // their tasks hold connections of this io_context
  core_->actions.join();
}

saga::Result<int> HttpApi::bind() {
  std::string host;
  int port = 0;
  if (Status st = split_address(core_->config.http, &host, &port); !st.ok()) return st;
  const Status cannot = Status::Unavailable("cannot listen on " + core_->config.http);
  beast::error_code ec;
  tcp::resolver resolver(core_->ioc);
  auto found = resolver.resolve(host, std::to_string(port), tcp::resolver::numeric_service, ec);
  if (ec || found.empty()) return cannot;
  const tcp::endpoint at = found.begin()->endpoint();
  tcp::acceptor& a = core_->acceptor;
  // SO_REUSEADDR only: with SO_REUSEPORT a second process on this port would take a share of
  // the connections (and their tokens).
  if (a.open(at.protocol(), ec); ec) return cannot;
  a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (a.bind(at, ec); ec) return cannot;
  if (a.listen(1024, ec); ec) return cannot;
  return static_cast<int>(a.local_endpoint().port());
}

bool HttpApi::serve() {
  Core& c = *core_;
  if (!c.acceptor.is_open()) {
    failed_ = true;
    return false;
  }
  c.work.emplace(c.ioc.get_executor());
  c.accept();
  running_ = true;
  try {
    c.ioc.run();
  } catch (const std::exception& e) {
    c.log.error("the HTTP server stopped: " + std::string(e.what()));
    failed_ = true;
  }
  running_ = false;
  return !failed_;
}

void HttpApi::stop() {
  net::post(core_->ioc, [core = core_] { core->stop_now(); });
}

}  // namespace sagad
