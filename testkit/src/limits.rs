//! Starting a child with a chosen descriptor limit.

use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{Resource, Rlimit};

/// Makes `cmd`'s process start with this descriptor limit (soft, hard); the spawn fails if
/// the limit cannot be set.
pub fn with_nofile(cmd: &mut Command, soft: u64, hard: u64) -> &mut Command {
    // SAFETY: setrlimit is a raw system call, async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = Rlimit {
                current: Some(soft),
                maximum: Some(hard),
            };
            rustix::process::setrlimit(Resource::Nofile, lim).map_err(std::io::Error::from)
        })
    }
}
