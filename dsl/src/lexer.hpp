// Internal: the tokens of a .saga file.
#pragma once

#include <string_view>
#include <vector>

#include "diagnostics.hpp"

namespace saga::dsl::internal {

enum class Tok { kIdent, kNumber, kDot, kDotDot, kLBrace, kRBrace, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;  // identifiers longer than kMaxIdentifierLength are cut to it
  std::string_view unit;  // numbers: the letters right after the digits ("ms" in 100ms)
  Loc loc;

  bool is(std::string_view word) const { return kind == Tok::kIdent && text == word; }
};

// Splits `source` into tokens, reporting bad characters and exceeded limits to `diags`.
// The result always ends with one kEnd token, located just after the last real token.
std::vector<Token> lex(std::string_view source, Diagnostics& diags);

}  // namespace saga::dsl::internal
