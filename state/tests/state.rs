//! Integration tests of corral-state: given these entries, when this command, then exactly
//! these events (or this rejection, and nothing changed).

mod state {
    pub mod support;

    mod agents;
    mod audit;
    mod auth;
    mod autoscale;
    mod codec;
    mod frameworks;
    mod offers;
    mod operator;
    mod properties;
    mod resources;
    mod services;
    mod tally;
    mod tasks;
    mod tick;
    mod visible;
}
