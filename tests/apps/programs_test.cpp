// Every program the project ships says its version and ends 2 on a usage error, saying what
// was wrong, instead of CLI11's own exit codes (100 and up).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "programs.hpp"
#include "testutil/testutil.hpp"

namespace {

using ::testing::HasSubstr;

class Programs : public ::testing::TestWithParam<std::string> {};

TEST_P(Programs, SayTheirVersionAndEndTwoOnAUsageError) {
  const std::string program = GetParam();
  const std::string name = program.substr(program.rfind('/') + 1);
  auto version = saga::testutil::run_command(program + " --version");
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_THAT(version.out, HasSubstr(name + " "));
  auto bad = saga::testutil::run_command(program + " --no-such-flag");
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("Run with --help"));  // after what was wrong
}

INSTANTIATE_TEST_SUITE_P(Shipped, Programs,
                         ::testing::ValuesIn(std::vector<std::string>{SAGA_PROGRAMS}));

TEST(Programs, SagactlCommandsTakeVersionToo) {
  auto r = saga::testutil::run_command(std::string(SAGACTL) + " list --version");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("sagactl "));
}

}  // namespace
