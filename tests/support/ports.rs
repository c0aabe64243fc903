//! Loopback ports for the servers that tests start as child processes.
//!
//! A port from `bind(127.0.0.1:0)` lies in the kernel's ephemeral range, where any outgoing connection
//! of this process may take it as its local port between our probe and the child's `bind` (a CI run
//! failed on exactly that: "bind: address already in use"). Ports below that range are only ever
//! taken by listeners that ask for them by number, so a random free one is as good as reserved.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::TcpListener;

const LOWEST: u16 = 20_000;

/// A loopback TCP port below the ephemeral range that nothing listens on now.
pub fn unused_loopback_port() -> Result<u16, String> {
    unused_port_on("127.0.0.1")
}

/// A TCP port of `host` below the ephemeral range that nothing listens on now.
pub fn unused_port_on(host: &str) -> Result<u16, String> {
    let ephemeral_low = ephemeral_range_start().unwrap_or(32_768);
    let (low, high) = if ephemeral_low > LOWEST + 1_000 {
        (LOWEST, ephemeral_low)
    } else {
        (10_000, ephemeral_low.max(11_000))
    };
    for _ in 0..200 {
        let candidate = low + (random() % u64::from(high - low)) as u16;
        if TcpListener::bind((host, candidate)).is_ok() {
            return Ok(candidate);
        }
    }
    Err(format!("no free port of {host} in {low}..{high} after 200 tries"))
}

/// True when a child process's log says it could not bind its port (then start it again on new ones).
pub fn lost_a_port(log: &str) -> bool {
    log.contains("address already in use")
}

fn ephemeral_range_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A fresh random number: each `RandomState` is seeded anew, so hashing nothing with it is random.
fn random() -> u64 {
    RandomState::new().hash_one(())
}
