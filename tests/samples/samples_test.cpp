// The programs the README tells a new user to run, run as that user would.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "testutil/testutil.hpp"

namespace saga {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string fresh_dir(const std::string& name) {
  const std::string dir =
      (std::filesystem::path(testutil::temp_path("_")).parent_path() / name).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(Samples, EmbeddingExampleRunsTheSagaToItsEndAndAgainIdempotently) {
  const std::string dir = fresh_dir("embedding");
  for (int run = 0; run < 2; ++run) {  // the second run finds the saga in its log
    auto r = testutil::run_command("cd '" + dir + "' && " EMBEDDING_EXAMPLE);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "saga order-42: completed\n") << r.err;
  }
}

TEST(Samples, ReadmeShowsTheCompiledEmbeddingExampleAsItIs) {
  const std::string readme = slurp(SAGA_SOURCE_DIR "/README.md");
  std::string example = slurp(SAGA_SOURCE_DIR "/samples/embedding_example.cpp");
  ASSERT_FALSE(example.empty());
  EXPECT_NE(readme.find("```cpp\n" + example + "```"), std::string::npos)
      << "README.md must show samples/embedding_example.cpp verbatim in a ```cpp block";
}

TEST(Samples, OrderDemoEndsConsistentWithACompensatedOrder) {
  const std::string dir = fresh_dir("demo");
  auto r = testutil::run_command(ORDER_DEMO " --data '" + dir + "/data'");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("3 completed, 2 compensated, 0 other"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ReleaseReservation"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| consistent"), std::string::npos) << r.out;
  // A ledger that disagrees with the others (a charge refunded behind the sagas' back) is
  // found, and the demo says so by its exit code.
  auto refund = testutil::run_command("sqlite3 '" + dir +
                                      "/data/payment.db' 'UPDATE charges SET refunded = 1 WHERE "
                                      "id = (SELECT min(id) FROM charges WHERE refunded = 0)'");
  ASSERT_EQ(refund.exit_code, 0) << refund.err;
  auto again = testutil::run_command(ORDER_DEMO " --keep --data '" + dir + "/data'");
  EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
  EXPECT_NE(again.out.find("3 completed, 2 compensated, 0 other"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("| INCONSISTENT"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace saga
