//! loadgen's integration tests, one binary (cargo's layout for a large suite: one link, not
//! fourteen). Each module is one area; `common` holds the misbehaving servers and helpers.
//!
//! Tests run two at a time in this one process. A test whose figures need the machine to
//! itself (timing, CPU shares) takes [`common::alone`]; every other test takes
//! [`common::shared`], so that nothing runs beside the first.

mod common;

mod agent;
mod calibration;
mod churn;
mod doctor;
mod engine;
mod faults;
pub(crate) mod html;
mod icmp;
mod outputs;
mod reports;
mod run;
mod shards;
mod slurm;
mod stages;
mod steady;
mod udp;
mod work;
