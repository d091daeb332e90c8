// Error collection and compiler-style formatting.
#include "diagnostics.hpp"

#include <algorithm>

namespace saga::dsl {
namespace internal {

namespace {

constexpr std::size_t kStoredErrors = 4 * kMaxErrors;  // bounded, then sorted and cut
constexpr std::size_t kShownWidth = 160;               // longer lines are shown around the column
constexpr std::size_t kBeforeCaret = 60;

}  // namespace

std::string Diagnostics::shown_line(const Loc& at, int* caret) const {
  const std::size_t offset = std::min<std::size_t>(at.offset, source_.size());
  const std::size_t line_start = offset - std::min<std::size_t>(offset, at.column - 1);
  std::size_t end = offset;
  while (end < source_.size() && source_[end] != '\n' && end - line_start < kShownWidth) ++end;
  std::size_t start = line_start;
  if (end - line_start >= kShownWidth && offset - line_start > kBeforeCaret) {
    start = offset - kBeforeCaret;
    while (end < source_.size() && source_[end] != '\n' && end - start < kShownWidth) ++end;
  }
  const bool cut_front = start > line_start;
  const bool cut_back = end < source_.size() && source_[end] != '\n';
  std::string text(source_.substr(start, end - start));
  if (!cut_back && !text.empty() && text.back() == '\r') text.pop_back();
  for (char& c : text)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) c = '?';
  *caret = static_cast<int>(offset - start + (cut_front ? 3 : 0));
  return (cut_front ? "..." : "") + text + (cut_back ? "..." : "");
}

void Diagnostics::error(const Loc& at, std::string message) {
  if (has_error_at(at.offset)) return;  // a repeat, not another error
  if (!offsets_.empty() && at.offset < offsets_.back()) offsets_sorted_ = false;
  offsets_.push_back(at.offset);
  ++total_;
  if (pending_.size() < kStoredErrors) pending_.push_back({at, std::move(message), false});
}

void Diagnostics::file_error(std::string message) {
  ++total_;
  pending_.push_back({Loc{0, 0, 0, 0}, std::move(message), true});
}

bool Diagnostics::has_error_at(uint32_t offset) const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [&](const Pending& p) { return !p.whole_file && p.at.offset == offset; });
}

bool Diagnostics::has_error_in(uint32_t begin, uint32_t end) const {
  if (!offsets_sorted_) {
    std::sort(offsets_.begin(), offsets_.end());
    offsets_sorted_ = true;
  }
  const auto it = std::lower_bound(offsets_.begin(), offsets_.end(), begin);
  return it != offsets_.end() && *it < end;
}

std::vector<Diagnostic> Diagnostics::take() {
  std::stable_sort(pending_.begin(), pending_.end(), [](const Pending& a, const Pending& b) {
    if (a.whole_file != b.whole_file) return a.whole_file;
    return a.at.offset < b.at.offset;
  });
  std::vector<Diagnostic> out;
  for (const Pending& p : pending_) {
    if (out.size() == static_cast<std::size_t>(kMaxErrors)) break;
    Diagnostic d;
    d.file = file_;
    d.message = p.message;
    if (!p.whole_file) {
      d.line = p.at.line;
      d.column = p.at.column;
      d.length = std::max(1, p.at.length);
      d.source_line = shown_line(p.at, &d.caret);
    }
    out.push_back(std::move(d));
  }
  if (total_ > kMaxErrors) {
    Diagnostic d;
    d.file = file_;
    d.message = "too many errors (" + std::to_string(total_) + "); only the first " +
                std::to_string(kMaxErrors) + " are shown";
    out.push_back(std::move(d));
  }
  pending_.clear();
  offsets_.clear();
  total_ = 0;
  return out;
}

namespace {

// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
int edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<int>> d(a.size() + 1, std::vector<int>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = static_cast<int>(i);
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = static_cast<int>(j);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string hint(std::string_view word, std::span<const std::string_view> words,
                 const std::string& expected) {
  if (word.size() <= 32) {
    const int allowed = word.size() <= 4 ? 1 : 2;
    for (std::string_view w : words)
      if (edit_distance(word, w) <= allowed) return "did you mean '" + std::string(w) + "'?";
  }
  return "expected " + expected;
}

std::string quote(std::string_view text) {
  constexpr std::size_t kMax = 40;
  std::string out = "'";
  for (char c : text.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (text.size() > kMax) out += "...";
  return out + "'";
}

}  // namespace internal

std::string format(const Diagnostic& d) {
  std::string out = d.file;
  if (d.line > 0) out += ":" + std::to_string(d.line) + ":" + std::to_string(d.column);
  out += ": error: " + d.message + "\n";
  if (d.line <= 0) return out;
  out += d.source_line + "\n";
  // The caret sits under the column: copy tabs, count one space per UTF-8 character.
  const std::size_t caret = std::min<std::size_t>(std::max(d.caret, 0), d.source_line.size());
  for (std::size_t i = 0; i < caret; ++i) {
    const auto c = static_cast<unsigned char>(d.source_line[i]);
    if (c == '\t') {
      out += '\t';
    } else if ((c & 0xC0) != 0x80) {
      out += ' ';
    }
  }
  // Then '^~~~' under the token, one mark per character.
  const std::size_t end =
      std::min<std::size_t>(caret + std::max(d.length, 1), d.source_line.size());
  std::size_t marks = 0;
  for (std::size_t i = caret; i < end; ++i)
    marks += (static_cast<unsigned char>(d.source_line[i]) & 0xC0) != 0x80;
  out += '^';
  out.append(marks > 1 ? marks - 1 : 0, '~');
  return out + "\n";
}

std::string format(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (const Diagnostic& d : ds) out += format(d);
  return out;
}

}  // namespace saga::dsl
