// A readable timeline of one saga's log, for the demo, `sagactl show` and logs.
#pragma once

#include <string>
#include <vector>

#include "saga/definition.hpp"
#include "saga/event.hpp"

namespace saga {

struct TimelineOptions {
  bool colour = false;  // ANSI colours (a terminal), plain otherwise
  // Following a saga: print only the events from this index on (and what it waits for now),
  // without the header; earlier events still count for durations and attempts.
  size_t first_event = 0;
};

// A header (type, version, status, trace, input), then one numbered line per event: wall-clock
// time, time since start, step, what happened (command and its id, outcome with the reason and
// how long the attempt took, the data a reply added), then what the saga waits for now.
// `def` may be null (names then fall back to step numbers).
std::string format_timeline(const std::string& saga_id, const std::vector<Event>& events,
                            const Definition* def, const TimelineOptions& options = {});

// The path the saga took, one line per step or compensation it ran, in the order it ran them:
// the command, how it ended, the attempts and the last attempt's duration; then how the saga
// ended and the steps it never reached.
std::string format_path(const std::string& saga_id, const std::vector<Event>& events,
                        const Definition* def, const TimelineOptions& options = {});

// "2026-11-24 01:02:03.456Z"
std::string format_time(TimePoint t);

}  // namespace saga
