//! Raft as a pure, deterministic state machine. (Under construction in issue 2.)
