// The installed package as a user consumes it: `cmake --install` into a fresh prefix, then a
// separate project finds it with find_package(saga), links every library into a shared
// object (position-independent code) and a program loads it and runs a compensated saga.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "testutil/testutil.hpp"

namespace {

namespace fs = std::filesystem;

TEST(Install, LibrariesLinkIntoASharedObjectThatRunsASaga) {
  const std::string dir = saga::testutil::temp_path("install");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string prefix = dir + "/prefix", build = dir + "/consumer";
  const std::string cmake = CMAKE;  // the one that built this tree, and its compiler
  auto install =
      saga::testutil::run_command(cmake + " --install " + SAGA_BINARY_DIR + " --prefix " + prefix);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  auto configure = saga::testutil::run_command(
      cmake + " -S " + SAGA_SOURCE_DIR + "/tests/install/consumer -B " + build +
      " -DCMAKE_PREFIX_PATH=" + prefix +
      " -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=" + CXX_COMPILER);
  ASSERT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  auto compile = saga::testutil::run_command(cmake + " --build " + build + " -j 2");
  ASSERT_EQ(compile.exit_code, 0) << compile.out << compile.err;
  auto run = saga::testutil::run_command(build + "/host " + build + "/liborder_plugin.so " + dir);
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(run.out, "compensated\n");
}

}  // namespace
