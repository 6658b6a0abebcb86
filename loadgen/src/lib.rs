//! loadgen: a load generator for echo servers.
//!
//! `loadgen --target mio --conns 1000` starts that echo server in a child process, opens the
//! connections, drives echo traffic from one event loop per client thread, checks every
//! echoed byte, and reports throughput, HdrHistogram latency, errors, and what the server
//! and the client cost. See the README for the commands and the CSV columns.
//!
//! The binary is [`commands::run`] behind a thin `main`; the modules the benches and the
//! integration tests use are public, the rest is crate-private.

pub(crate) mod agent;
pub(crate) mod capacity;
pub(crate) mod choice;
pub mod cli;
pub mod commands;
pub(crate) mod compare;
pub(crate) mod config;
pub(crate) mod doctor;
mod driver;
pub mod error;
mod fanout;
#[cfg(test)]
mod fuzz;
pub mod hlog;
mod listener;
mod machine;
pub(crate) mod merge;
pub mod payload;
mod plot;
mod ports;
mod proc;
pub mod record;
mod repeat;
pub(crate) mod report;
mod run;
pub mod rxstamp;
pub mod schedule;
pub mod shard;
mod signals;
pub(crate) mod stats;
pub(crate) mod steady;
mod sys;
mod target;
