//! Tests of corral-master through its router, called in-process with `oneshot` against
//! masters on a real replicated log (sled files, an in-process network between them).

mod master {
    mod audit;
    mod dns;
    mod failover;
    mod leader_proxy;
    mod marathon_routes;
    mod members;
    mod metrics;
    mod refusals;
    mod routes;
    mod security;
    mod services;
    mod support;
    mod ui;
    mod v0_routes;
    mod views;
}
