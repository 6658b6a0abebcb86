//! The operating system: every system call, `/proc` reader and netlink/sock_diag query of
//! loadgen, and every `unsafe` outside the io_uring engine. May import: `error` only.
//!
//! `sys` (the thin wrappers: affinity, CPU clocks, `tcp_info`, limits), `proc` (a
//! process's CPU, memory and threads from `/proc`), `machine` and `usage` (what the
//! whole machine did during a window, and who else used it), `listener` (accept queues
//! through sock_diag), `rxstamp` (kernel receive timestamps), `signals` (Ctrl-C),
//! `files` (the files a user names: output destinations and input checks).

pub(crate) mod files;
pub(crate) mod icmp;
pub(crate) mod listener;
pub(crate) mod machine;
pub(crate) mod proc;
pub mod rxstamp;
pub(crate) mod signals;
pub(crate) mod sys;
pub(crate) mod usage;
