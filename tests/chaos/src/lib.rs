//! `corral-chaos`: a fault campaign against real `corral master` and `corral agent`
//! processes, each in its own network namespace, with clients recording a Jepsen-style
//! history and checkers that judge it against the masters' journals.

pub mod check;
pub mod client;
pub mod cluster;
pub mod history;
pub mod journal;
pub mod monitor;
pub mod nemesis;
pub mod netns;
pub mod report;
pub mod rng;
pub mod run;
pub mod workload;
