//! The `trellis2` command-line tool: `serve` runs the whole mesh in one process (gateway + the
//! four services in-process, no network hops); client commands talk to a gateway URL; `tokens`
//! manages API tokens in a data directory.

pub mod client;
pub mod credentials;
