//! Service discovery by DNS, as Mesos-DNS names it, computed from the materialized state.
//!
//! `Records::build` is a pure function of the state, the masters and the configuration: the
//! same inputs give the same records, in the same order. `answer` turns one DNS message into
//! its reply from those records. The UDP and TCP sockets live in the master's shell.
//!
//! Names (Mesos-DNS's, with the domain `mesos` by default):
//! - `{task}.{framework}.{domain}` A: the agent's address of every task that is RUNNING, not
//!   being killed, and healthy if it has a health check (Mesos-DNS ignores health);
//!   `{task}.{framework}.slave.{domain}` A the same; `{task}` is the task's `DiscoveryInfo`
//!   name, else its name, as an RFC 1123 label (`c.b.a` → `c-b-a`).
//! - `{task}-{hash}-{agent tail}.{framework}.{domain}` A (and `.slave.`): one name per task,
//!   the target of its SRV records.
//! - `_{task}._tcp.{framework}.{domain}` and `_udp` SRV: each discovery port (or, without
//!   `DiscoveryInfo`, each port resource) → `{canonical}.{framework}.{domain}.:{host port}`;
//!   `_{port name}._{task}._{protocol}.{framework}.{domain}` for named ports; the
//!   `.slave.{domain}` forms for every port resource.
//! - `leader.{domain}`, `master.{domain}`, `master{n}.{domain}` A; `_leader._tcp` and
//!   `_leader._udp` SRV; `slave.{domain}` A and `_slave._tcp.{domain}` SRV for every
//!   reachable agent; `ns1.{domain}` A (the answering master); SOA and NS at `{domain}`.
//! - Any other name in the domain is NXDOMAIN; a name outside it is REFUSED (no recursion).
//!
//! `Catalog::build` is the same kind of function for `/corral/v1/services`: every app with
//! its instances (address, ports, health, version), and `ChangeIndex` the log index at which
//! each service last changed, for long polls.

mod catalog;
mod records;
mod wire;

pub use catalog::{Catalog, ChangeIndex, Endpoint, EndpointPort, Service};
pub use records::{label, DnsConfig, Masters, Record, RecordData, Records, TaskRecords};
pub use wire::{answer, Question, RecordType, WireError};
