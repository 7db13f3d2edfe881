//! Integration tests of corral-api.

mod api {
    mod mesos_json;
    mod metrics;
    mod native;
    mod operator_json;
    mod session;
}
