// Diagrams of a saga: the forward path left to right, each step's compensation dashed beside
// it, and the compensation path (dashed) in the order the engine runs it.
#include <string>
#include <vector>

#include "saga/dsl.hpp"

namespace saga::dsl {

namespace {

struct Stage {
  std::size_t first, end;  // steps [first, end)
  bool parallel() const { return end - first > 1; }
};

std::vector<Stage> stages(const Definition& def) {
  std::vector<Stage> out;
  for (std::size_t i = 0; i < def.steps.size();) {
    std::size_t end = i + 1;
    while (end < def.steps.size() && def.steps[end].stage == def.steps[i].stage) ++end;
    out.push_back({i, end});
    i = end;
  }
  return out;
}

std::string attempts(const RetryPolicy& p) {
  return p.forever() ? "retry forever" : "retry " + std::to_string(p.max_attempts);
}

// The note under a step's command: its kind and how it is retried.
std::string step_note(const Definition& def, std::size_t i) {
  const StepDef& s = def.steps[i];
  switch (def.kind(static_cast<int>(i))) {
    case StepKind::kPivot:
      return "PIVOT · " + attempts(s.retry);
    case StepKind::kRetriable:
      return "retriable · " + attempts(s.retry);
    default:
      return attempts(s.retry);
  }
}

// Compensatable steps, last compensated first: the engine's order, parallel blocks included.
std::vector<std::size_t> compensation_order(const Definition& def) {
  std::vector<std::size_t> out;
  for (std::size_t i = def.steps.size(); i-- > 0;)
    if (def.steps[i].compensatable()) out.push_back(i);
  return out;
}

std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string mermaid_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"') {
      out += "#quot;";
    } else if (c == '<') {
      out += "#lt;";
    } else if (c == '>') {
      out += "#gt;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string title(const Definition& def) {
  return def.name + " v" + std::to_string(def.version);
}

}  // namespace

std::string to_dot(const Definition& def) {
  std::string out = "digraph \"" + dot_escape(title(def)) + "\" {\n";
  out += "  label=\"" + dot_escape(title(def)) + "\"; labelloc=t; fontname=\"Helvetica\";\n";
  out += "  rankdir=LR; nodesep=0.4; ranksep=0.5;\n";
  out +=
      "  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\", "
      "fontsize=11];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  out += "  start [shape=circle, label=\"start\", fillcolor=\"#e0e0e0\"];\n";
  out += "  completed [shape=doublecircle, label=\"completed\", fillcolor=\"#c8e6c9\"];\n";
  if (!compensation_order(def).empty())
    out +=
        "  compensated [shape=doublecircle, style=\"filled,dashed\", label=\"compensated\", "
        "fillcolor=\"#ffcdd2\"];\n";

  const auto node = [&](std::size_t i, const std::string& indent) {
    const StepDef& s = def.steps[i];
    const StepKind kind = def.kind(static_cast<int>(i));
    std::string attrs = "label=\"" + dot_escape(s.name) + "\\n" + dot_escape(s.action.to_string()) +
                        "\\n" + dot_escape(step_note(def, i)) + "\"";
    if (kind == StepKind::kPivot) attrs += ", fillcolor=\"#ffe082\", penwidth=3";
    if (kind == StepKind::kRetriable) attrs += ", fillcolor=\"#bbdefb\"";
    std::string text = indent + "s" + std::to_string(i) + " [" + attrs + "];\n";
    if (s.compensation) {
      text += indent + "c" + std::to_string(i) + " [label=\"" +
              dot_escape(s.compensation->to_string()) + "\\n" +
              dot_escape(attempts(s.compensation_retry)) +
              "\", style=\"rounded,dashed\", fontcolor=\"#b71c1c\", color=\"#b71c1c\"];\n";
    }
    return text;
  };

  const std::vector<Stage> st = stages(def);
  for (std::size_t k = 0; k < st.size(); ++k) {
    if (!st[k].parallel()) {
      const std::size_t i = st[k].first;
      out += node(i, "  ");
      // Keeps a compensation in its step's column, below it.
      if (def.steps[i].compensation)
        out += "  { rank=same; s" + std::to_string(i) + "; c" + std::to_string(i) + "; }\n";
      continue;
    }
    out += "  subgraph cluster_stage" + std::to_string(k) + " {\n";
    out +=
        "    label=\"parallel: all must succeed\"; style=\"rounded,dashed\"; color=\"#607d8b\";\n";
    for (std::size_t i = st[k].first; i < st[k].end; ++i) out += node(i, "    ");
    out += "  }\n";
  }

  // Forward path: every step of a stage follows every step of the stage before.
  std::vector<std::string> prev = {"start"};
  for (const Stage& s : st) {
    std::vector<std::string> cur;
    for (std::size_t i = s.first; i < s.end; ++i) cur.push_back("s" + std::to_string(i));
    for (const std::string& a : prev)
      for (const std::string& b : cur) out += "  " + a + " -> " + b + ";\n";
    prev = cur;
  }
  for (const std::string& a : prev) out += "  " + a + " -> completed;\n";

  // Compensations: each beside its step, then the path the engine takes back.
  for (std::size_t i = 0; i < def.steps.size(); ++i) {
    if (!def.steps[i].compensation) continue;
    const std::string n = std::to_string(i);
    out += "  s" + n + " -> c" + n +
           " [style=dashed, color=\"#b71c1c\", arrowhead=none, constraint=false];\n";
  }
  const std::vector<std::size_t> back = compensation_order(def);
  for (std::size_t k = 0; k < back.size(); ++k) {
    const std::string from = "c" + std::to_string(back[k]);
    const std::string to = k + 1 < back.size() ? "c" + std::to_string(back[k + 1]) : "compensated";
    out += "  " + from + " -> " + to + " [style=dashed, color=\"#b71c1c\", constraint=false" +
           (k == 0 ? ", label=\"undo\"" : "") + "];\n";
  }
  return out + "}\n";
}

std::string to_mermaid(const Definition& def) {
  std::string out = "---\ntitle: " + mermaid_escape(title(def)) + "\n---\nflowchart LR\n";
  out += "  start([start])\n  completed([completed])\n";
  const std::vector<std::size_t> back = compensation_order(def);
  if (!back.empty()) out += "  compensated([compensated])\n";

  const auto node = [&](std::size_t i, const std::string& indent) {
    const StepDef& s = def.steps[i];
    const std::string n = std::to_string(i);
    std::string text = indent + "s" + n + "[\"<b>" + mermaid_escape(s.name) + "</b><br/>" +
                       mermaid_escape(s.action.to_string()) + "<br/><i>" +
                       mermaid_escape(step_note(def, i)) + "</i>\"]\n";
    if (s.compensation) {
      text += indent + "c" + n + "[\"" + mermaid_escape(s.compensation->to_string()) + "<br/><i>" +
              mermaid_escape(attempts(s.compensation_retry)) + "</i>\"]\n";
    }
    return text;
  };

  const std::vector<Stage> st = stages(def);
  for (std::size_t k = 0; k < st.size(); ++k) {
    if (!st[k].parallel()) {
      out += node(st[k].first, "  ");
      continue;
    }
    out += "  subgraph stage" + std::to_string(k) + "[\"parallel: all must succeed\"]\n";
    for (std::size_t i = st[k].first; i < st[k].end; ++i) out += node(i, "    ");
    out += "  end\n";
  }

  std::vector<std::string> prev = {"start"};
  for (const Stage& s : st) {
    std::vector<std::string> cur;
    for (std::size_t i = s.first; i < s.end; ++i) cur.push_back("s" + std::to_string(i));
    for (const std::string& a : prev)
      for (const std::string& b : cur) out += "  " + a + " --> " + b + "\n";
    prev = cur;
  }
  for (const std::string& a : prev) out += "  " + a + " --> completed\n";

  for (std::size_t i = 0; i < def.steps.size(); ++i) {
    if (!def.steps[i].compensation) continue;
    out += "  s" + std::to_string(i) + " -.- c" + std::to_string(i) + "\n";
  }
  for (std::size_t k = 0; k < back.size(); ++k) {
    const std::string from = "c" + std::to_string(back[k]);
    const std::string to = k + 1 < back.size() ? "c" + std::to_string(back[k + 1]) : "compensated";
    out += "  " + from + (k == 0 ? " -. undo .-> " : " -.-> ") + to + "\n";
  }

  out += "  classDef pivot fill:#ffe082,stroke:#ff6f00,stroke-width:3px\n";
  out += "  classDef retriable fill:#bbdefb,stroke:#0d47a1\n";
  out += "  classDef compensation stroke:#b71c1c,stroke-dasharray:5 5,color:#b71c1c\n";
  for (std::size_t i = 0; i < def.steps.size(); ++i) {
    const StepKind kind = def.kind(static_cast<int>(i));
    const std::string n = std::to_string(i);
    if (kind == StepKind::kPivot) out += "  class s" + n + " pivot\n";
    if (kind == StepKind::kRetriable) out += "  class s" + n + " retriable\n";
    if (def.steps[i].compensation) out += "  class c" + n + " compensation\n";
  }
  return out;
}

}  // namespace saga::dsl
