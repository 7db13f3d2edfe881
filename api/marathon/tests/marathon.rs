//! Tests of corral-marathon: app definitions and the planner, given states built from real
//! commands; no process, no IO.

mod marathon {
    mod apps;
    mod planner;
    mod ports;
}
