//! Loopback ports for processes a test starts, picked so nothing else takes them first.
//!
//! The usual trick (bind port 0, read the port, close, hand it to a child) races with every
//! outgoing connection on the machine: the kernel gives connections local ports from the
//! same ephemeral range, and in the moment before the child binds, a test's HTTP client may
//! take the port. A master that cannot bind exits, and the test waits in vain for a leader.
//! So ports come from below the ephemeral range, where the kernel never picks on its own,
//! each at most once per test binary, from a start that differs between processes.

use std::sync::atomic::{AtomicU32, Ordering};

/// Lowest port handed out: above the well-known and registered services tests might meet.
const LOWEST: u32 = 20_000;

/// A loopback port free for both TCP and UDP right now, never handed out before by this
/// process, and outside the range the kernel picks ephemeral ports from.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let highest = ephemeral_start().saturating_sub(1);
    assert!(highest > LOWEST, "the ephemeral port range starts at {highest}, below {LOWEST}");
    let span = highest - LOWEST;
    // Another test binary (or a second checkout's) may pick at the same time: start apart.
    let offset = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let turn = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOWEST + (offset + turn) % span)
            .expect("ports stay below the ephemeral range, under 65536");
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {LOWEST} and {highest}")
}

/// The first port of `net.ipv4.ip_local_port_range`: where the kernel's own picks begin.
fn ephemeral_start() -> u32 {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("Linux tells its ephemeral port range in /proc");
    range
        .split_whitespace()
        .next()
        .and_then(|low| low.parse().ok())
        .expect("ip_local_port_range starts with a port number")
}
