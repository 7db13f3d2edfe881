//! `corral proxy`: a load balancer that follows the service catalog by long polls and swaps
//! its routing table atomically, so a scale or a rolling deploy never drops a connection.
//!
//! - [`table`]: the routing table as a pure function of a catalog answer and `--group`.
//! - [`run`]: the listeners (L4 per service port, L7 on `--http-listen`), the catalog
//!   follower and the admin listener (`/_corral/proxy/config`, `/metrics`).

pub mod run;
pub mod table;
