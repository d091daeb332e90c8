#include "config.hpp"

#include "saga_json.hpp"

#include <toml++/toml.h>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace sagad {

using saga::Status;

namespace {

std::string where(const toml::node& n) {
  const auto& src = n.source();
  return src.begin.line ? " (line " + std::to_string(src.begin.line) + ")" : "";
}

Status wrong(const std::string& key, const toml::node& n, const char* want) {
  return Status::InvalidArgument("config key '" + key + "'" + where(n) + " must be " + want);
}

Status read_string(const toml::table& t, const std::string& prefix, const std::string& key,
                   std::string* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  if (!n->is_string()) return wrong(prefix + key, *n, "a string");
  *out = n->as_string()->get();
  return Status::Ok();
}

Status read_int(const toml::table& t, const std::string& prefix, const std::string& key, int64_t lo,
                int64_t hi, int64_t* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return Status::Ok();
  if (!n->is_integer()) return wrong(prefix + key, *n, "a whole number");
  const int64_t v = n->as_integer()->get();
  if (v < lo || v > hi)
    return wrong(prefix + key, *n,
                 ("between " + std::to_string(lo) + " and " + std::to_string(hi)).c_str());
  *out = v;
  return Status::Ok();
}

}  // namespace

Status load_toml(const std::string& path, Config* c) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(path + ":" + std::to_string(e.source().begin.line) + ":" +
                                   std::to_string(e.source().begin.column) + ": " +
                                   std::string(e.description()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": " + e.what());
  }
  static const char* kTop[] = {"definitions", "db",  "transport", "participants", "partitions",
                               "http",        "log", "kafka",     "topics"};
  for (const auto& [key, node] : root) {
    bool known = false;
    for (const char* k : kTop) known = known || key.str() == k;
    if (!known)
      return Status::InvalidArgument(path + ": unknown key '" + std::string(key.str()) + "'" +
                                     where(node));
  }
  Status st;
  int64_t partitions = c->partitions;
  if (!(st = read_string(root, "", "definitions", &c->definitions)).ok()) return st;
  if (!(st = read_string(root, "", "db", &c->db)).ok()) return st;
  if (!(st = read_string(root, "", "transport", &c->transport)).ok()) return st;
  if (!(st = read_string(root, "", "participants", &c->participants)).ok()) return st;
  if (!(st = read_int(root, "", "partitions", 1, 64, &partitions)).ok()) return st;
  c->partitions = static_cast<int>(partitions);

  auto table = [&](const char* name, const std::vector<std::string>& keys,
                   const toml::table** out) -> Status {
    *out = nullptr;
    const toml::node* n = root.get(name);
    if (n == nullptr) return Status::Ok();
    if (!n->is_table()) return wrong(name, *n, "a table");
    *out = n->as_table();
    if (keys.empty()) return Status::Ok();
    for (const auto& [key, node] : **out) {
      bool known = false;
      for (const auto& k : keys) known = known || key.str() == k;
      if (!known)
        return Status::InvalidArgument(path + ": unknown key '" + name + "." +
                                       std::string(key.str()) + "'" + where(node));
    }
    return Status::Ok();
  };
  const toml::table* http = nullptr;
  if (!(st = table("http", {"listen", "token_file", "max_body_bytes", "max_wait_ms"}, &http)).ok())
    return st;
  if (http) {
    int64_t body = static_cast<int64_t>(c->max_body_bytes), wait = c->max_wait_ms;
    if (!(st = read_string(*http, "http.", "listen", &c->http)).ok()) return st;
    if (!(st = read_string(*http, "http.", "token_file", &c->token_file)).ok()) return st;
    if (!(st = read_int(*http, "http.", "max_body_bytes", 1024, 64 << 20, &body)).ok()) return st;
    if (!(st = read_int(*http, "http.", "max_wait_ms", 0, 3'600'000, &wait)).ok()) return st;
    c->max_body_bytes = static_cast<size_t>(body);
    c->max_wait_ms = static_cast<int>(wait);
  }
  const toml::table* log = nullptr;
  if (!(st = table("log", {"level", "format"}, &log)).ok()) return st;
  if (log) {
    if (!(st = read_string(*log, "log.", "level", &c->log_level)).ok()) return st;
    if (!(st = read_string(*log, "log.", "format", &c->log_format)).ok()) return st;
  }
  const toml::table* topics = nullptr;
  if (!(st = table("topics", {"requests", "outcomes"}, &topics)).ok()) return st;
  if (topics) {
    if (!(st = read_string(*topics, "topics.", "requests", &c->requests_topic)).ok()) return st;
    if (!(st = read_string(*topics, "topics.", "outcomes", &c->outcomes_topic)).ok()) return st;
  }
  const toml::table* kafka = nullptr;
  if (!(st = table("kafka", {}, &kafka)).ok()) return st;
  if (kafka) {
    for (const auto& [key, node] : *kafka) {
      const std::string k(key.str());
      if (node.is_string()) {
        c->kafka[k] = node.as_string()->get();
      } else if (node.is_integer()) {
        c->kafka[k] = std::to_string(node.as_integer()->get());
      } else if (node.is_boolean()) {
        c->kafka[k] = node.as_boolean()->get() ? "true" : "false";
      } else {
        return wrong("kafka." + k, node, "a string, a whole number or true/false");
      }
    }
  }
  return Status::Ok();
}

Status split_address(const std::string& address, std::string* host, int* port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status::InvalidArgument("--http '" + address + "' must be HOST:PORT");
  *host = address.substr(0, colon);
  const std::string p = address.substr(colon + 1);
  char* end = nullptr;
  const long v = std::strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != 0 || v < 0 || v > 65535)
    return Status::InvalidArgument("--http '" + address + "': port must be 0 to 65535");
  *port = static_cast<int>(v);
  return Status::Ok();
}

Status finish(Config* c) {
  if (c->definitions.empty())
    return Status::InvalidArgument(
        "no definitions: give --definitions DIR|FILE (or 'definitions' in the config)");
  if (c->db.empty()) return Status::InvalidArgument("--db must name a file");
  if (c->transport != "memory" && c->transport != "kafka")
    return Status::InvalidArgument("--transport must be memory or kafka, not '" + c->transport +
                                   "'");
  if (c->participants != "samples" && c->participants != "workload" && c->participants != "none")
    return Status::InvalidArgument("--participants must be samples, workload or none");
  if (c->transport == "kafka" && !c->kafka.count("bootstrap.servers"))
    return Status::InvalidArgument(
        "--transport kafka needs --bootstrap HOST:PORT (or kafka.\"bootstrap.servers\" in the "
        "config)");
  for (const std::string* t : {&c->requests_topic, &c->outcomes_topic}) {
    if (t->empty()) continue;
    if (t->find('.') == std::string::npos)
      return Status::InvalidArgument("topic '" + *t +
                                     "' must have a dot in its name (topics.requests, "
                                     "topics.outcomes)");
    const std::string suffix = ".commands";
    if (*t == "orchestrator.replies" || (t->size() > suffix.size() && t->ends_with(suffix)) ||
        t->ends_with(".dlq"))
      return Status::InvalidArgument("topic '" + *t +
                                     "' is a participant's, the replies' or a dead-letter topic: "
                                     "choose another for topics.requests / topics.outcomes");
  }
  if (!c->requests_topic.empty() && c->requests_topic == c->outcomes_topic)
    return Status::InvalidArgument("topics.requests and topics.outcomes must differ");
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok = level_ok || c->log_level == l;
  if (!level_ok)
    return Status::InvalidArgument("--log-level must be trace, debug, info, warn or error");
  if (c->log_format != "text" && c->log_format != "json")
    return Status::InvalidArgument("--log-format must be text or json");
  std::string host;
  int port = 0;
  if (Status st = split_address(c->http, &host, &port); !st.ok()) return st;
  auto token = saga::apps::read_token(c->token_file);
  if (!token.ok()) return token.status();
  c->token = std::move(*token);
  return Status::Ok();
}

}  // namespace sagad
