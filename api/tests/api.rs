//! Integration tests of corral-api.

mod api {
    mod mesos_json;
    mod operator_json;
}
