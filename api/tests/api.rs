//! Integration tests of corral-api.

mod api {
    mod mesos_json;
    mod native;
    mod operator_json;
    mod session;
}
