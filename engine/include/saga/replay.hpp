// Debugging recorded logs: the state at any event, and the determinism check that re-runs the
// state machine over a recorded log.
#pragma once

#include <string>
#include <vector>

#include "saga/definition.hpp"
#include "saga/event.hpp"
#include "saga/status.hpp"

namespace saga {

// The state after the first `upto` events (all of them when upto >= events.size()).
SagaState state_at(const std::string& saga_id, const std::vector<Event>& events, size_t upto);

struct ReplayReport {
  size_t events_checked = 0;
  SagaState final_state;
};

// Re-runs start()/decide() with the inputs the log implies (replies, timers, operator actions,
// each at its recorded time) and checks that every decision produces exactly the recorded
// events. A mismatch is kFailedPrecondition naming the first event that differs and what the
// current code decides instead: the log was written by code that decides differently.
Result<ReplayReport> check_determinism(const Definition& def, const std::string& saga_id,
                                       const std::vector<Event>& events);

}  // namespace saga
