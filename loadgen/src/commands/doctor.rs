//! `loadgen doctor`: the machine's limits on precision and scale, with their fixes
//! ([`crate::run::doctor`]); `--tune` / `--reset` apply and restore the reversible settings.

use std::io::Write;

use crate::cli::DoctorArgs;
use crate::error::Error;
use crate::output::sink;
use crate::run::doctor;

/// `loadgen doctor`.
pub(super) fn run(a: &DoctorArgs) -> anyhow::Result<u8> {
    if a.tune || a.reset {
        if !rustix::process::geteuid().is_root() {
            return Err(Error::Input(format!(
                "{} changes kernel settings: run it as root",
                if a.tune { "--tune" } else { "--reset" }
            ))
            .into());
        }
        let done = if a.tune { doctor::tune() } else { doctor::reset() };
        let lines = done.map_err(|e| Error::Input(format!("cannot {}: {e}", if a.tune { "tune" } else { "reset" })))?;
        let mut out = std::io::stdout().lock();
        if lines.is_empty() {
            writeln!(out, "nothing to change")?;
        }
        for l in lines {
            writeln!(out, "{l}")?;
        }
        if a.tune {
            writeln!(
                out,
                "saved in {}; `loadgen doctor --reset` restores it",
                doctor::state_file().display()
            )?;
        }
        return Ok(0);
    }
    if let Some(path) = &a.json {
        crate::output::sink::check_output("--json", path)?;
    }
    let d = doctor::diagnose()?;
    if let Some(path) = &a.json {
        let mut bytes = serde_json::to_vec_pretty(&d)?;
        bytes.push(b'\n');
        sink::write_file(path, &bytes)?;
    }
    let text = doctor::render(&d);
    let stdout_taken = a
        .json
        .as_deref()
        .is_some_and(|p| crate::os::files::Dest::of(p).is_stdout());
    if stdout_taken {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    } else {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
    Ok(0)
}
