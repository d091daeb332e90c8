// A readable timeline of one saga's log, for the demo, `sagactl show` and logs.
#pragma once

#include <string>
#include <vector>

#include "saga/definition.hpp"
#include "saga/event.hpp"

namespace saga {

// One line per event: time since start, step, what happened. `def` may be null (names then
// fall back to step numbers). Ends with the final state line when the saga has ended.
std::string format_timeline(const std::string& saga_id, const std::vector<Event>& events,
                            const Definition* def);

}  // namespace saga
