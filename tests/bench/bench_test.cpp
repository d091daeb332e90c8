// saga-bench as a user runs it: it never replaces a file it did not create unless told to.
#include <gtest/gtest.h>

#include <fstream>

#include "testutil/testutil.hpp"

namespace saga {
namespace {

TEST(SagaBench, RefusesToReplaceAnExistingDbFileUnlessToldTo) {
  const std::string path = testutil::temp_path("precious.db");
  {
    std::ofstream f(path);
    f << "a user's saga log";
  }
  auto refused = testutil::run_command(std::string(SAGA_BENCH) + " --sagas 10 --db '" + path + "'");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("refusing to replace"), std::string::npos) << refused.err;
  std::ifstream f(path);
  std::string content;
  std::getline(f, content);
  EXPECT_EQ(content, "a user's saga log");

  auto replaced = testutil::run_command(std::string(SAGA_BENCH) + " --sagas 10 --db '" + path +
                                        "' --overwrite");
  EXPECT_EQ(replaced.exit_code, 0) << replaced.err;
  EXPECT_NE(replaced.out.find("\"verified\":true"), std::string::npos) << replaced.out;
}

// Kafka mode starts its own saga-mock-broker and stops it when done.
TEST(SagaBenchKafka, RunsTheWorkloadOverAMockBrokerItStartsAndStops) {
  const std::string path = testutil::temp_path("kafka-bench.db");
  auto r = testutil::run_command(std::string(SAGA_BENCH) + " --mode kafka --sagas 300 --db '" +
                                 path + "' --overwrite");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"mode\":\"kafka\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"verified\":true"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("saga-mock-broker: stopping"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace saga
