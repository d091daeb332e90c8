// saga-bench --mode http: `inflight` keep-alive connections, all driven by one thread
// (Boost.Beast), start sagas on a running sagad with ?wait and take the outcome from the
// answer; then every compensated saga's log is read back through the API.
#include "http_load.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace sagabench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

constexpr auto kTimeout = std::chrono::seconds(60);  // a sagad that stops answering fails the run

double ms3(double ms) {
  return std::round(ms * 1000) / 1000;
}

struct Load {
  std::string host, prefix;
  tcp::resolver::results_type endpoints;
  int sagas = 0, next = 0;
  std::vector<double> latencies;
  std::vector<std::string> compensated_ids;
  int completed = 0, compensated = 0, errors = 0;
  std::string first_error;

  void failed(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

// One keep-alive connection: start a saga, wait for its answer, start the next.
class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(net::io_context& ioc, Load& load) : load_(load), stream_(ioc) {}

  void run() {
    stream_.async_connect(load_.endpoints,
                          [self = shared_from_this()](beast::error_code ec, const auto&) {
                            if (ec) return self->give_up("cannot connect: " + ec.message());
                            beast::error_code ignored;
                            self->stream_.socket().set_option(tcp::no_delay(true), ignored);
                            self->next();
                          });
  }

 private:
  void next() {
    if (load_.next >= load_.sagas) return;
    i_ = load_.next++;
    const std::string id = load_.prefix + std::to_string(i_);
    nlohmann::json data{{"order_id", id}, {"amount", 10 + i_ % 90}};
    if (i_ % 10 == 0) data["fail"] = true;
    req_ = {http::verb::post, "/sagas?wait=30s", 11};
    req_.set(http::field::host, load_.host);
    req_.set(http::field::content_type, "application/json");
    req_.body() = nlohmann::json{{"type", "PlaceOrder"}, {"id", id}, {"data", data}}.dump();
    req_.prepare_payload();
    t0_ = Clock::now();
    stream_.expires_after(kTimeout);
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->give_up("send: " + ec.message());
      self->res_ = {};
      http::async_read(self->stream_, self->buffer_, self->res_,
                       [self](beast::error_code ec, size_t) { self->on_answer(ec); });
    });
  }

  void on_answer(beast::error_code ec) {
    if (ec) return give_up("answer: " + ec.message());
    load_.latencies[i_] = std::chrono::duration<double, std::milli>(Clock::now() - t0_).count();
    std::string status;
    if (res_.result_int() == 200) {
      auto j = nlohmann::json::parse(res_.body(), nullptr, false);
      if (j.is_object()) status = j.value("status", "");
    }
    if (status == "completed") {
      ++load_.completed;
    } else if (status == "compensated") {
      ++load_.compensated;
      load_.compensated_ids.push_back(load_.prefix + std::to_string(i_));
    } else {
      load_.failed(std::to_string(res_.result_int()) + " " + res_.body().substr(0, 300));
    }
    if (!res_.keep_alive()) return;  // sagad closes it (counted above): the others go on
    next();
  }

  // This connection stops; the others take the remaining sagas.
  void give_up(const std::string& why) { load_.failed(why); }

  Load& load_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  int i_ = 0;
  Clock::time_point t0_;
};

// GETs on one keep-alive connection, opened again when it closes; nullopt when no answer.
class Getter {
 public:
  Getter(net::io_context& ioc, Load& load) : load_(load), stream_(ioc) {}

  std::optional<nlohmann::json> get(const std::string& target) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      beast::error_code ec;
      if (!open_) {
        stream_.connect(load_.endpoints, ec);
        if (ec) return std::nullopt;
        open_ = true;
        // Blocking calls: a sagad that stops answering fails the GET instead of hanging.
        timeval tv{std::chrono::duration_cast<std::chrono::seconds>(kTimeout).count(), 0};
        ::setsockopt(stream_.socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(stream_.socket().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      }
      http::request<http::empty_body> req{http::verb::get, target, 11};
      req.set(http::field::host, load_.host);
      http::response<http::string_body> res;
      http::write(stream_, req, ec);
      if (!ec) http::read(stream_, buffer_, res, ec);
      if (ec || !res.keep_alive()) {
        beast::error_code ignored;
        stream_.socket().close(ignored);
        buffer_.clear();
        open_ = false;
        if (ec) continue;  // closed since the last GET, say: once more on a new connection
      }
      if (res.result_int() != 200) return std::nullopt;
      auto j = nlohmann::json::parse(res.body(), nullptr, false);
      if (j.is_discarded()) return std::nullopt;
      return j;
    }
    return std::nullopt;
  }

 private:
  Load& load_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool open_ = false;
};

}  // namespace

int run_http(const std::string& url, const std::string& run, int sagas, int inflight) {
  std::string hostport = url;
  if (const size_t scheme = hostport.find("://"); scheme != std::string::npos) {
    if (!beast::iequals(hostport.substr(0, scheme), "http")) {
      std::cerr << "saga-bench: --url must be http://HOST:PORT (sagad serves plain HTTP)\n";
      return 2;
    }
    hostport = hostport.substr(scheme + 3);
  }
  hostport = hostport.substr(0, hostport.find('/'));
  Load load;
  load.host = hostport;
  // HOST:PORT or [IPv6]:PORT
  size_t colon = hostport.rfind(':');
  if (const size_t bracket = hostport.rfind(']'); bracket != std::string::npos && colon < bracket)
    colon = std::string::npos;
  std::string host = hostport.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  net::io_context ioc{1};
  beast::error_code ec;
  load.endpoints = tcp::resolver(ioc).resolve(host, port, ec);
  if (ec) {
    std::cerr << "saga-bench: cannot resolve " << url << ": " << ec.message() << "\n";
    return 2;
  }
  load.prefix = "bench-" +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()) +
                "-";
  load.sagas = sagas;
  load.latencies.assign(sagas, 0);

  const auto start = Clock::now();
  for (int k = 0; k < inflight; ++k) std::make_shared<Client>(ioc, load)->run();
  ioc.run();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();

  // Every compensated saga released its reservation exactly once, by its own log.
  int not_released = 0;
  Getter getter(ioc, load);
  for (const std::string& id : load.compensated_ids) {
    int released = 0;
    if (auto j = getter.get("/sagas/" + id); j && j->is_object() && (*j)["events"].is_array())
      for (const auto& e : (*j)["events"])
        released += e.is_object() && e.value("type", "") == "CompensationSucceeded" &&
                    e.value("command", "") == "inventory.ReleaseReservation";
    not_released += released != 1;
  }
  const int want_compensated = (sagas + 9) / 10;
  const bool ok = load.errors == 0 && load.compensated == want_compensated &&
                  load.completed == sagas - want_compensated && not_released == 0;
  nlohmann::json out{{"mode", "http"},
                     {"url", url},
                     {"run", run},
                     {"sagas", sagas},
                     {"inflight", inflight},
                     {"sagas_per_s", std::round(sagas / secs)},
                     {"p50_ms", ms3(percentile(load.latencies, 0.50))},
                     {"p99_ms", ms3(percentile(load.latencies, 0.99))},
                     {"max_ms", ms3(percentile(load.latencies, 1.0))},
                     {"completed", load.completed},
                     {"compensated", load.compensated},
                     {"seconds", ms3(secs)},
                     {"verified", ok}};
  std::cout << out.dump() << std::endl;
  if (!ok)
    std::cerr << "verification failed: errors=" << load.errors << " not_released=" << not_released
              << (load.first_error.empty() ? "" : " first error: " + load.first_error) << "\n";
  return ok ? 0 : 1;
}

}  // namespace sagabench
