//! loadgen: a load generator for echo servers.
//!
//! `loadgen --target mio --conns 1000` starts that echo server in a child process, opens the
//! connections, drives echo traffic from one event loop per client thread, checks every
//! echoed byte, and reports throughput, HdrHistogram latency, errors, and what the server
//! and the client cost. See the README for the commands and the CSV columns.
//!
//! The binary is [`commands::run`] behind a thin `main`; the modules the benches and the
//! integration tests use are public, the rest is crate-private.

pub(crate) mod analysis;
pub mod cli;
pub mod commands;
pub(crate) mod config;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod measure;
pub mod os;
pub(crate) mod output;
pub mod report;
pub(crate) mod run;
pub(crate) mod scale;
pub(crate) mod stats;
