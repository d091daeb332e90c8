// A readable timeline of one saga's log, for the demo, `sagactl show` and logs.
#pragma once

#include <string>
#include <vector>

#include "saga/definition.hpp"
#include "saga/event.hpp"

namespace saga {

struct TimelineOptions {
  bool colour = false;  // ANSI colours (a terminal), plain otherwise
};

// A header (type, version, status, trace, input), then one numbered line per event: wall-clock
// time, time since start, step, what happened (command and its id, outcome with the reason and
// how long the attempt took, the data a reply added), then what the saga waits for now.
// `def` may be null (names then fall back to step numbers).
std::string format_timeline(const std::string& saga_id, const std::vector<Event>& events,
                            const Definition* def, const TimelineOptions& options = {});

// "2026-11-24 01:02:03.456Z"
std::string format_time(TimePoint t);

}  // namespace saga
