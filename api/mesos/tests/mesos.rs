//! Tests of corral-mesos: JSON in, domain values out, and back; no process, no IO.

mod mesos {
    mod in_place;
    mod json;
    mod operator;
    mod session;
    mod v0;
}
