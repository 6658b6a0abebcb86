//! Reports of a run: one [`Report`] record, and pure serializers that turn it into bytes
//! (CSV row, JSON document, human table). Files are written in one place, [`sink`].
//!
//! A new format is one file here and one arm in [`Format`].

mod charts;
pub(crate) mod csv_row;
mod data;
pub mod dest;
mod environment;
mod format;
pub mod html;
pub(crate) mod json;
mod machine;
pub mod read;
pub(crate) mod sink;
pub(crate) mod table;
mod work;

pub use data::*;
pub use environment::Environment;
pub use format::Format;
pub use machine::MachineUse;
pub use work::WorkDone;
