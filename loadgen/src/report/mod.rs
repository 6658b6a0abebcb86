//! The report of a run, as data: one [`Report`] record and its parts, built one way
//! (`build`: every field written once, the derived figures computed once), the CSV schema and
//! row (`csv_row`), a CSV report read back ([`read`]), what a shard writes for the merge
//! ([`shard`]), how shards' results combine ([`combine`]), and how figures print (`units`).
//! Serializers are in `output`.
//! May import: `config`, `measure`, `stats`, `os`, `cli`, `error`.

mod build;
pub mod combine;
pub(crate) mod csv_row;
mod data;
mod environment;
pub mod read;
pub mod shard;
mod stage;
mod status;
pub(crate) mod units;
mod work;

pub use crate::os::usage::MachineUse;
pub(crate) use build::{server_workers, settings};
pub use data::*;
pub use environment::Environment;
pub use stage::StageInfo;
pub use work::WorkDone;
