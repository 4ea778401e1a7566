//! The `trellis2` command-line tool: `serve` runs the whole mesh in one process (gateway + the
//! four services in-process, no network hops) or the gateway in front of remote services;
//! `service` runs one gRPC service; client commands talk to a gateway URL; `tokens` manages API
//! tokens; `models` writes, checks and downloads model directories.

pub mod client;
pub mod credentials;
pub mod models;
