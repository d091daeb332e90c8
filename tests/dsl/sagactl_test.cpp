// sagactl run as a process: exit codes, stdout and stderr.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testutil/testutil.hpp"

namespace {

using ::testing::HasSubstr;

using Outcome = saga::testutil::CommandOutcome;

Outcome sagactl(const std::string& args) {
  return saga::testutil::run_command(std::string("'") + SAGACTL + "' " + args);
}

std::string sample(const char* name) {
  return std::string(SAGA_SOURCE_DIR) + "/samples/" + name;
}

std::string write(const std::string& name, const std::string& text) {
  const std::string path = saga::testutil::temp_path(name);
  std::ofstream(path) << text;
  return path;
}

TEST(SagactlValidate, AcceptsTheSamples) {
  const Outcome r =
      sagactl("validate " + sample("place_order.saga") + " " + sample("book_trip.saga"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, sample("place_order.saga") + ": ok (1 saga)\n" + sample("book_trip.saga") +
                       ": ok (2 sagas)\n");
  EXPECT_EQ(r.err, "");
}

TEST(SagactlValidate, PrintsEveryErrorWithLocationAndFailsWithExitCode1) {
  const std::string bad = write("bad.saga", R"(saga A {
  timeout 30
  step a { comand a.A }
}
)");
  const Outcome r = sagactl("validate " + sample("place_order.saga") + " " + bad);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, sample("place_order.saga") + ": ok (1 saga)\n");
  EXPECT_EQ(r.err, bad +
                       ":2:11: error: duration '30' needs a unit: ms, s, m or h\n"
                       "  timeout 30\n"
                       "          ^~\n" +
                       bad +
                       ":3:12: error: unknown keyword 'comand' in step 'a'; did you mean "
                       "'command'?\n"
                       "  step a { comand a.A }\n"
                       "           ^~~~~~\n" +
                       bad + ": 2 errors\n");
}

TEST(SagactlValidate, MissingFileIsAnError) {
  const Outcome r = sagactl("validate /no/such.saga");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "/no/such.saga: error: cannot read the file: No such file or directory\n"
            "/no/such.saga: 1 error\n");
}

TEST(SagactlGraph, WritesDotThatGraphvizRenders) {
  const Outcome r = sagactl("graph " + sample("place_order.saga"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("digraph \"PlaceOrder v1\""));
  if (std::system("command -v dot >/dev/null 2>&1") != 0) GTEST_SKIP() << "graphviz not installed";
  const std::string png = saga::testutil::temp_path("graph.png");
  const Outcome d =
      sagactl("graph " + sample("place_order.saga") + " | dot -Tpng -o '" + png + "'");
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_GT(std::filesystem::file_size(png), 1000u);
}

TEST(SagactlGraph, WritesMermaid) {
  const Outcome r = sagactl("graph --format mermaid " + sample("place_order.saga"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("flowchart LR\n"));
  EXPECT_THAT(r.out, HasSubstr("class s2 pivot"));
}

TEST(SagactlGraph, ChoosesASagaByNameAndVersion) {
  const std::string file = sample("book_trip.saga");
  EXPECT_THAT(sagactl("graph " + file).out, HasSubstr("digraph \"BookTrip v2\""));
  EXPECT_THAT(sagactl("graph --saga BookTrip " + file).out, HasSubstr("digraph \"BookTrip v2\""));
  EXPECT_THAT(sagactl("graph --saga BookTrip --saga-version 1 " + file).out,
              HasSubstr("digraph \"BookTrip v1\""));
  const Outcome missing = sagactl("graph --saga Nope " + file);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(missing.err,
            file + ": error: no saga 'Nope' (the file has BookTrip v1, BookTrip v2)\n");
}

TEST(SagactlGraph, AsksWhichSagaWhenTheFileHasSeveral) {
  const std::string file =
      write("two.saga", "saga A { step a { command a.A } }\nsaga B { step b { command b.B } }\n");
  const Outcome r = sagactl("graph " + file);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, file +
                       ": error: the file has several sagas (A v1, B v1); choose one with "
                       "--saga NAME\n");
  EXPECT_EQ(sagactl("graph --saga B " + file).exit_code, 0);
}

TEST(SagactlGraph, AnInvalidFileIsNotDrawn) {
  const std::string file = write("bad.saga", "saga A { step a { command a } }\n");
  const Outcome r = sagactl("graph " + file);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr(file + ":1:27: error: command 'a' must name its participant"));
}

TEST(SagactlValidate, AFileWithNoSagaIsAnError) {
  const std::string empty = write("empty.saga", "# only a comment\n");
  const Outcome r = sagactl("validate " + empty);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(empty + ": error: no saga in it"));
}

TEST(Sagactl, EverySubcommandHasHelp) {
  for (const char* args : {"--help", "validate --help", "graph --help", "list --help",
                           "show --help", "replay --help", "export --help"}) {
    const Outcome r = sagactl(args);
    EXPECT_EQ(r.exit_code, 0) << args;
    EXPECT_THAT(r.out, HasSubstr("Usage: ")) << args;
  }
}

TEST(Sagactl, UsageErrorsExitWith2) {
  EXPECT_EQ(sagactl("").exit_code, 2);
  EXPECT_EQ(sagactl("validate").exit_code, 2);
  EXPECT_EQ(sagactl("frobnicate").exit_code, 2);
  EXPECT_EQ(sagactl("list").exit_code, 2);  // --db is required
  const Outcome r = sagactl("graph --format png " + sample("place_order.saga"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--format"));
}

TEST(Sagactl, VersionIsPrinted) {
  const Outcome r = sagactl("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("sagactl "));
}

}  // namespace
