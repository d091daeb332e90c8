// Hostile input: errors, never crashes, hangs or unbounded memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dsl_test_util.hpp"
#include "saga/dsl.hpp"
#include "testutil/testutil.hpp"

namespace saga::dsl {
namespace {

// Every diagnostic formats, and the result is consistent.
void expect_sane(const ParseResult& r) {
  EXPECT_LE(r.errors.size(), static_cast<std::size_t>(kMaxErrors) + 1);
  for (const Diagnostic& d : r.errors) {
    EXPECT_FALSE(format(d).empty());
    EXPECT_LE(d.source_line.size(), 200u);
    EXPECT_LT(d.message.size(), 400u);
  }
  // The same properties as dsl/fuzz/dsl_fuzz.cpp checks.
  for (const Definition& d : r.definitions) {
    EXPECT_TRUE(validate(d).empty()) << print(d);
    const ParseResult again = parse(print(d));
    EXPECT_TRUE(again.ok()) << test::messages(again) << print(d);
    EXPECT_TRUE(again.definitions == std::vector{d}) << print(d);
  }
}

TEST(DslLimits, RejectsAFileOverOneMebibyte) {
  const std::string text(kMaxFileBytes + 1, '#');
  const ParseResult r = parse(text, "big.saga");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].message, "file is too large (1048577 bytes; the limit is 1048576)");

  const std::string path = testutil::temp_path("big.saga");
  std::ofstream(path) << text;
  const ParseResult f = parse_file(path);
  ASSERT_EQ(f.errors.size(), 1u);
  EXPECT_EQ(f.errors[0].message, "file is too large (1048577 bytes; the limit is 1048576)");
}

TEST(DslLimits, AcceptsAFileOfExactlyOneMebibyte) {
  std::string text = "saga A { step a { command a.A } }\n";
  text += std::string(kMaxFileBytes - text.size(), '#');
  const ParseResult r = parse(text);
  EXPECT_TRUE(r.ok()) << test::messages(r);
}

TEST(DslLimits, BoundsTheNumberOfTokens) {
  std::string text;
  for (int i = 0; text.size() < 900'000; ++i)
    text += "saga A" + std::to_string(i) + " { step a { command a.A } }\n";
  const ParseResult r = parse(text);
  ASSERT_FALSE(r.ok());
  bool found = false;
  for (const Diagnostic& d : r.errors)
    found |= d.message == "the file has more than 100000 tokens; the rest of the file is ignored";
  EXPECT_TRUE(found) << test::messages(r);
  expect_sane(r);
}

TEST(DslLimits, BoundsNesting) {
  const ParseResult r = parse(std::string(100'000, '{'));
  ASSERT_EQ(r.errors.size(), 2u) << test::messages(r);
  EXPECT_EQ(r.errors[0].message, "expected 'saga', found '{'");
  EXPECT_EQ(r.errors[1].column, 17);
  EXPECT_EQ(r.errors[1].message,
            "braces are nested more than 16 deep; the rest of the file is ignored");
}

TEST(DslLimits, DeepNestingInsideAStep) {
  const ParseResult r = parse("saga A { step a { command a.A " + std::string(50, '{') +
                              std::string(50, '}') + " } }");
  ASSERT_FALSE(r.ok());
  expect_sane(r);
}

TEST(DslLimits, VeryLongIdentifiersAreCutInMessages) {
  const std::string name(300'000, 'x');
  const ParseResult r = parse("saga " + name + " { step " + name + " { command a." + name + " } }");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors[0].message, "identifier is longer than 128 characters");
  expect_sane(r);
}

TEST(DslLimits, NulBytesAndBinaryGarbage) {
  expect_sane(parse(std::string(100'000, '\0')));
  std::string bin;
  for (int i = 0; i < 200'000; ++i) bin += static_cast<char>((i * 7919) & 0xff);
  const ParseResult r = parse(bin);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors.size(), static_cast<std::size_t>(kMaxErrors) + 1);
  EXPECT_THAT(r.errors.back().message, ::testing::StartsWith("too many errors ("));
  expect_sane(r);
}

TEST(DslLimits, HugeNumbersAndLongNumbers) {
  for (const std::string& v : {std::string(5000, '9') + "s", std::string(5000, '9'),
                               "0." + std::string(5000, '1'), "1" + std::string(3000, '0') + "h"}) {
    const ParseResult r = parse("saga A { step a { command a.A timeout " + v + " retry " + v +
                                " jitter " + v + " } }");
    EXPECT_FALSE(r.ok());
    expect_sane(r);
  }
}

TEST(DslLimits, BoundsStepsPerSaga) {
  std::string text = "saga A {\n";
  for (int i = 0; i <= kMaxStepsPerSaga; ++i)
    text += "step s" + std::to_string(i) + " { command a.A compensate a.U }\n";
  const ParseResult r = parse(text + "}");
  ASSERT_EQ(r.errors.size(), 1u) << test::messages(r);
  EXPECT_EQ(r.errors[0].line, kMaxStepsPerSaga + 2);
  EXPECT_EQ(r.errors[0].message, "saga 'A' has more than 1000 steps");
}

TEST(DslLimits, ManyErrorsAreCapped) {
  std::string text = "saga A {\n";
  for (int i = 0; i < 500; ++i)
    text += "step s" + std::to_string(i) + " { command a.A compensate a.U timeout 1x }\n";
  const ParseResult r = parse(text + "}");
  ASSERT_EQ(r.errors.size(), static_cast<std::size_t>(kMaxErrors) + 1);
  EXPECT_EQ(r.errors[0].line, 2);
  EXPECT_EQ(r.errors.back().message, "too many errors (500); only the first 50 are shown");
}

// Random edits of valid files: whatever comes out is an error list or a round-trippable result.
TEST(DslLimits, MutatedSamplesNeverCrash) {
  testutil::SeededRandom rnd;
  const std::vector<std::string> seeds = {
      test::read_file(test::source_path("samples/place_order.saga")),
      test::read_file(test::source_path("samples/book_trip.saga"))};
  using namespace std::string_literals;
  const std::string alphabet = "{}.. \n#\"\0\xc3saga step parallel retry forever 10ms 1.5 x"s;
  for (int n = 0; n < 3000; ++n) {
    std::string text = seeds[rnd.uniform(0, 1)];
    for (int k = rnd.uniform(1, 8); k > 0; --k) {
      const std::size_t at = rnd.uniform(0, static_cast<int>(text.size()));
      switch (rnd.uniform(0, 2)) {
        case 0:
          text.erase(at, rnd.uniform(1, 20));
          break;
        case 1:
          text.insert(at, alphabet.substr(rnd.uniform(0, static_cast<int>(alphabet.size()) - 1),
                                          rnd.uniform(1, 6)));
          break;
        default:
          text.insert(at, text.substr(rnd.uniform(0, static_cast<int>(text.size()) - 1), 30));
      }
    }
    expect_sane(parse(text, "mutated.saga"));
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "input:\n" << text;
      return;
    }
  }
}

// Inputs the fuzzer found troublesome (see dsl/fuzz/); each must parse without crashing.
TEST(DslLimits, FuzzRegressions) {
  const std::filesystem::path dir = std::filesystem::path(DSL_TEST_DIR) / "fuzz_regressions";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    SCOPED_TRACE(entry.path().string());
    expect_sane(parse(test::read_file(entry.path().string()), entry.path().filename().string()));
    ++n;
  }
  EXPECT_GT(n, 0);
}

}  // namespace
}  // namespace saga::dsl
