//! Parts both echo-bench crates use, kept apart so that neither reaches into the other:
//!
//! - [`ring`]: the io_uring toolkit (rings, the provided-buffer ring, user-data packing,
//!   availability), used by the uring server model and by loadgen's uring engine;
//! - [`args`]: the command-line helpers (a usage error as one line, exit code 2).

pub mod args;
pub mod ring;
