//! Integration tests of corral-api.

mod api {
    mod support;

    mod agents;
    mod marathon_apps;
    mod marathon_e2e;
    mod marathon_planner;
    mod marathon_routes;
    mod masters;
    mod mesos_json;
    mod metrics;
    mod native;
    mod operator_json;
    mod session;
}
