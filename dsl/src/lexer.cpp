// The lexer: identifiers, numbers with an optional unit, '.', '..', braces; '#' comments.
#include "lexer.hpp"

#include <string>

namespace saga::dsl::internal {

namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_ident_char(char c) {
  return is_alpha(c) || is_digit(c) || c == '-';
}
bool is_ascii(char c) {
  return static_cast<unsigned char>(c) < 0x80;
}

class Lexer {
 public:
  Lexer(std::string_view src, Diagnostics& diags) : src_(src), diags_(diags) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    Loc end_loc{0, 1, 1, 1};
    int depth = 0;
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == '\n') {
        advance(1);
        open_quote_ = false;
        ++line_;
        line_start_ = pos_;
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\r') {
        advance(1);
        continue;
      }
      if (c == '#') {  // comment: anything but NUL up to the end of the line
        while (pos_ < src_.size() && src_[pos_] != '\n') {
          if (src_[pos_] == '\0')
            bad_run("unexpected NUL byte (is this a binary file?)");
          else
            advance(1);
        }
        continue;
      }
      Token t;
      const std::size_t start = pos_;
      if (is_alpha(c)) {
        while (pos_ < src_.size() && is_ident_char(src_[pos_])) ++pos_;
        t.kind = Tok::kIdent;
        t.text = src_.substr(start, pos_ - start);
        if (t.text.size() > static_cast<std::size_t>(kMaxIdentifierLength)) {
          diags_.error(
              loc_at(start, pos_ - start),
              "identifier is longer than " + std::to_string(kMaxIdentifierLength) + " characters");
          t.text = t.text.substr(0, kMaxIdentifierLength);
        }
      } else if (is_digit(c)) {
        while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
        if (pos_ + 1 < src_.size() && src_[pos_] == '.' && is_digit(src_[pos_ + 1])) {
          ++pos_;
          while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
        }
        const std::size_t unit = pos_;
        while (pos_ < src_.size() && (is_alpha(src_[pos_]) || is_digit(src_[pos_]))) ++pos_;
        t.kind = Tok::kNumber;
        t.text = src_.substr(start, pos_ - start);
        t.unit = src_.substr(unit, pos_ - unit);
      } else if (c == '.') {
        pos_ += (pos_ + 1 < src_.size() && src_[pos_ + 1] == '.') ? 2 : 1;
        t.kind = pos_ - start == 2 ? Tok::kDotDot : Tok::kDot;
        t.text = src_.substr(start, pos_ - start);
      } else if (c == '{' || c == '}') {
        ++pos_;
        t.kind = c == '{' ? Tok::kLBrace : Tok::kRBrace;
        t.text = src_.substr(start, 1);
        if (c == '{' && ++depth > kMaxNesting) {
          diags_.error(loc_at(start, 1), "braces are nested more than " +
                                             std::to_string(kMaxNesting) +
                                             " deep; the rest of the file is ignored");
          break;
        }
        if (c == '}' && depth > 0) --depth;
      } else {
        unexpected(c);
        continue;
      }
      t.loc = loc_at(start, pos_ - start);
      end_loc = t.loc;
      end_loc.offset += static_cast<uint32_t>(t.loc.length);
      end_loc.column += t.loc.length;
      end_loc.length = 1;
      if (out.size() == static_cast<std::size_t>(kMaxTokens)) {
        diags_.error(t.loc, "the file has more than " + std::to_string(kMaxTokens) +
                                " tokens; the rest of the file is ignored");
        break;
      }
      out.push_back(t);
    }
    Token end;
    end.loc = end_loc;
    out.push_back(end);
    return out;
  }

 private:
  void advance(std::size_t n) { pos_ += n; }

  Loc loc_at(std::size_t start, std::size_t length) const {
    Loc l;
    l.offset = static_cast<uint32_t>(start);
    l.line = line_;
    l.column = static_cast<int>(start - line_start_) + 1;
    l.length = static_cast<int>(std::min<std::size_t>(length, 1u << 20));
    return l;
  }

  // Reports a run of similar bad bytes (NULs, non-ASCII, or one control character) once.
  void bad_run(const std::string& message) {
    const std::size_t start = pos_;
    const char first = src_[pos_];
    const auto same = [&](char c) { return is_ascii(first) ? c == first : !is_ascii(c); };
    while (pos_ < src_.size() && src_[pos_] != '\n' && same(src_[pos_])) ++pos_;
    diags_.error(loc_at(start, pos_ - start), message);
  }

  void unexpected(char c) {
    if (c == '\0') return bad_run("unexpected NUL byte (is this a binary file?)");
    if (!is_ascii(c)) {
      return bad_run("unexpected non-ASCII text; names are ASCII letters, digits, '_' and '-'");
    }
    std::string msg;
    const char next = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    if (c == '"' || c == '\'') {
      // One error per quoted text: the closing quote is skipped silently.
      open_quote_ = !open_quote_;
      if (!open_quote_) return advance(1);
      msg = "unexpected quote; names and commands are written without quotes";
    } else if (c == '/' && next == '/') {
      diags_.error(loc_at(pos_, 2), "unexpected '//'; comments start with '#'");
      while (pos_ < src_.size() && src_[pos_] != '\n') advance(1);
      return;
    } else if (c == '-' && is_digit(next)) {
      msg = "unexpected '-'; numbers and durations cannot be negative";
    } else if (c == ':' || c == '=') {
      msg = std::string("unexpected '") + c + "'; write options as 'timeout 30s', without '" + c +
            "'";
    } else if (c < 0x20 || c == 0x7f) {
      return bad_run("unexpected control character (byte " + std::to_string(static_cast<int>(c)) +
                     ")");
    } else {
      msg = std::string("unexpected character '") + c + "'";
    }
    diags_.error(loc_at(pos_, 1), msg);
    advance(1);
  }

  std::string_view src_;
  Diagnostics& diags_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  int line_ = 1;
  bool open_quote_ = false;  // a quote was reported on this line and not yet closed
};

}  // namespace

std::vector<Token> lex(std::string_view source, Diagnostics& diags) {
  return Lexer(source, diags).run();
}

}  // namespace saga::dsl::internal
