// saga-mock-broker: librdkafka's mock cluster (the real Kafka protocol, on 127.0.0.1) as a
// process of its own, so that tests and demos can kill the services around it. Prints
// `bootstrap=HOST:PORT[,...]` on its first line and runs until SIGTERM or SIGINT.
//
// Lines on stdin steer it (tests use them; EOF is fine):
//   down BROKER | up BROKER        broker id, or -1 for all (rd_kafka_mock_broker_set_down/up)
//   errors APIKEY ERROR COUNT      the next COUNT requests of APIKEY fail with ERROR
//   topic NAME PARTITIONS          create a topic
//   rtt BROKER MS                  delay the broker's responses
// Each line is answered on stdout with `ok ...` or `error ...`.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"

namespace {

std::string steer(rd_kafka_mock_cluster_t* mc, const std::string& line) {
  std::istringstream in(line);
  std::string verb;
  in >> verb;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (verb == "down" || verb == "up") {
    int32_t broker = -1;
    if (!(in >> broker)) return "error " + verb + ": expected a broker id (or -1)";
    err = verb == "down" ? rd_kafka_mock_broker_set_down(mc, broker)
                         : rd_kafka_mock_broker_set_up(mc, broker);
  } else if (verb == "errors") {
    int api = -1, code = 0;
    size_t count = 0;
    if (!(in >> api >> code >> count) || api < 0 || count == 0 || count > 100000)
      return "error errors: expected APIKEY ERROR COUNT";
    std::vector<rd_kafka_resp_err_t> codes(count, static_cast<rd_kafka_resp_err_t>(code));
    rd_kafka_mock_push_request_errors_array(mc, static_cast<int16_t>(api), count, codes.data());
  } else if (verb == "topic") {
    std::string name;
    int partitions = 0;
    if (!(in >> name >> partitions) || partitions < 1 || partitions > 10000)
      return "error topic: expected NAME PARTITIONS";
    err = rd_kafka_mock_topic_create(mc, name.c_str(), partitions, 1);
  } else if (verb == "rtt") {
    int32_t broker = -1;
    int ms = 0;
    if (!(in >> broker >> ms) || ms < 0) return "error rtt: expected BROKER MS";
    err = rd_kafka_mock_broker_set_rtt(mc, broker, ms);
  } else {
    return "error unknown command '" + verb + "' (down, up, errors, topic, rtt)";
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return "error " + verb + ": " + rd_kafka_err2str(err);
  return "ok " + line;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"saga-mock-broker: librdkafka's mock Kafka cluster on 127.0.0.1",
               "saga-mock-broker"};
  int brokers = 1, partitions = 4;
  std::vector<std::string> topics;
  app.add_option("--brokers", brokers, "Brokers in the cluster")->check(CLI::Range(1, 16));
  app.add_option("--partitions", partitions, "Partitions of each --topic")
      ->check(CLI::Range(1, 1000));
  app.add_option("--topic", topics,
                 "Create this topic at start (repeatable); others are "
                 "created when first used");
  saga::apps::add_version(app, "saga-mock-broker");
  if (auto code = saga::apps::parse_command_line(app, argc, argv)) return *code;

  // Signals are taken by sigwait() below, not by handlers on random threads.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    std::cerr << "saga-mock-broker: " << err << "\n";
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    std::cerr << "saga-mock-broker: could not start the mock cluster\n";
    rd_kafka_destroy(rk);
    return 1;
  }
  for (const std::string& t : topics) {
    if (auto e = rd_kafka_mock_topic_create(mc, t.c_str(), partitions, 1); e) {
      std::cerr << "saga-mock-broker: topic " << t << ": " << rd_kafka_err2str(e) << "\n";
      return 1;
    }
  }
  std::cout << "bootstrap=" << rd_kafka_mock_cluster_bootstraps(mc) << std::endl;

  std::thread([mc] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      std::cout << steer(mc, line) << std::endl;
    }
  }).detach();

  int sig = 0;
  sigwait(&stop, &sig);
  std::cerr << "saga-mock-broker: stopping on signal " << sig << "\n";
  // The stdin reader may be inside getline() (holding stdin's lock) and may still use `mc`:
  // flush only the output streams and leave without tearing the cluster down under it.
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);
}
