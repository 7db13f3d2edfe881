//! Process-level tests of the `corral` binary: real `corral master` and `corral agent`
//! processes on loopback with real sled directories, real Docker containers, and the
//! unmodified pymesos and marathon clients.

mod corral {
    mod access;
    mod acl;
    mod agent_access;
    mod agents;
    mod audit;
    mod autoscale;
    mod backup;
    mod dev;
    mod discovery;
    mod grafana;
    mod marathon_e2e;
    mod masters;
    mod members;
    mod operations;
    mod proxy;
    mod raft_secret;
    mod secured_clients;
    mod tls;
    mod views;
    mod webui;
}
