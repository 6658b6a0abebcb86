//! Ctrl-C and SIGTERM, once for the whole process: the first sets a flag that a run, a
//! sweep and a capacity search all watch (the run in progress stops and keeps what it
//! measured, nothing further starts); a second one exits at once (code 1).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process-wide interrupt flag, with the handlers installed on first use.
pub fn flag() -> &'static Arc<AtomicBool> {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registration only fails for forbidden signals, which these are not.
            let _ = signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&flag));
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    })
}

/// Whether Ctrl-C or SIGTERM has arrived.
pub fn interrupted() -> bool {
    flag().load(Ordering::Relaxed)
}
