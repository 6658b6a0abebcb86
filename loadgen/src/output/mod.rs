//! A report as bytes: pure serializers (human [`table`], [`json`], the CSV row lives with the
//! report's schema in `report::csv_row`), the [`html`] page with its [`charts`] and
//! [`plot`]s, and the one place that writes files ([`sink`]).
//! May import: anything below `commands`.
//!
//! A new format is one file here and one arm in [`Format`].

#[cfg(feature = "html")]
pub(crate) mod charts;
mod format;
#[cfg(feature = "html")]
pub mod html;
pub(crate) mod json;
#[cfg(feature = "html")]
pub(crate) mod plot;
pub(crate) mod sink;
pub(crate) mod spectrum;
pub(crate) mod table;

pub use format::Format;
