//! The one error type for what the user can fix or what stops a run from starting; each
//! variant carries its exit code from the contract (2: bad usage or unreadable input;
//! 3: could not run at all). Anything else that ends a command (an `anyhow` error with its
//! context) exits 1.

use servers::Model;
use thiserror::Error;

/// A mistake the user can fix, or a target that cannot be run.
#[derive(Debug, Error, PartialEq)]
pub enum Error {
    /// A flag's value is not acceptable (exit 2).
    #[error("{flag} '{value}': {reason}")]
    Flag {
        /// The flag, e.g. `--duration`.
        flag: &'static str,
        /// The value as given.
        value: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// Neither a target nor an address (exit 2).
    #[error(
        "nothing to load: give --target MODEL (one of: {}) or --addr HOST:PORT",
        Model::names()
    )]
    NoTarget,
    /// More connections than this process may hold descriptors for (exit 2).
    #[error(
        "--conns {conns} needs about {needed} file descriptors but the limit is {limit} \
         (soft limit already raised to the hard limit); lower --conns, raise the hard limit \
         (ulimit -Hn), or split the load over several processes (--procs N)"
    )]
    TooManyConns {
        /// Connections asked for.
        conns: usize,
        /// Descriptors needed.
        needed: u64,
        /// The hard limit.
        limit: u64,
    },
    /// An input file that cannot be read or is not what it should be (exit 2); the message
    /// names the file.
    #[error("{0}")]
    Input(String),
    /// The run cannot start at all: the target does not start, the address does not
    /// resolve or nothing accepts connections there (exit 3).
    #[error("{0}")]
    CannotRun(String),
    /// A part this binary was built without (exit 2): `what` needs cargo `feature`.
    #[error("{what} needs the '{feature}' feature, which this loadgen was built without: rebuild with `cargo build --release -p loadgen --features {feature}` (default builds have it)")]
    NotBuilt {
        /// The command or flag, e.g. `loadgen agent`.
        what: &'static str,
        /// The cargo feature.
        feature: &'static str,
    },
}

impl Error {
    /// The process exit code the contract gives this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Flag { .. }
            | Error::NoTarget
            | Error::TooManyConns { .. }
            | Error::Input(_)
            | Error::NotBuilt { .. } => 2,
            Error::CannotRun(_) => 3,
        }
    }
}

/// A [`Error::Flag`] for `flag` given `value`, refused because of `reason`.
pub(crate) fn flag_error(flag: &'static str, value: impl ToString, reason: impl ToString) -> Error {
    Error::Flag {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// The exit code for an error that ended a command: the first [`enum@Error`] in its chain
/// decides; anything else is 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map_or(1, Error::exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn exit_codes_come_from_the_variant_even_under_context() {
        let e: anyhow::Error = Error::CannotRun("x".into()).into();
        assert_eq!(exit_code(&e), 3);
        let wrapped = Err::<(), _>(Error::Input("f".into())).context("reading").unwrap_err();
        assert_eq!(exit_code(&wrapped), 2);
        assert_eq!(exit_code(&flag_error("--conns", 0, "no").into()), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("disk full")), 1);
    }
}
