// What the sample service processes share: a Kafka transport from --bootstrap, and a clean stop
// on SIGTERM or SIGINT.
#pragma once

#include <signal.h>

#include <iostream>
#include <memory>
#include <string>

#include "saga/kafka_transport.hpp"

namespace saga::samples {

// Call first in main(): SIGTERM and SIGINT are then taken by wait_for_stop(), on no thread.
inline void block_stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
}

inline int wait_for_stop() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  int sig = 0;
  sigwait(&s, &sig);
  return sig;
}

// A restarted service gets its partitions back within a few seconds (not librdkafka's 45 s).
inline std::unique_ptr<kafka::KafkaTransport> open_kafka(const std::string& bootstrap,
                                                         const std::string& name) {
  kafka::Options o;
  o.properties = {
      {"bootstrap.servers", bootstrap}, {"client.id", name}, {"session.timeout.ms", "6000"}};
  o.group_prefix = "saga";
  o.log = [name](const std::string& line) { std::cerr << name << ": " << line << "\n"; };
  auto t = kafka::KafkaTransport::open(o);
  if (!t.ok()) {
    std::cerr << name << ": " << t.status().to_string() << "\n";
    return nullptr;
  }
  return std::move(*t);
}

}  // namespace saga::samples
