//! Signalling processes the test started, by pid.

pub use rustix::process::Signal;

/// Sends `sig` to `pid`, a process this test started. Panics if it cannot be sent.
pub fn signal(pid: u32, sig: Signal) {
    let p = rustix::process::Pid::from_raw(pid as i32).expect("a positive pid");
    rustix::process::kill_process(p, sig).unwrap_or_else(|e| panic!("cannot signal {pid}: {e}"));
}
