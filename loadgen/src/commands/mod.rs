//! The commands, one file each: parse-free, they take checked or raw arguments and return
//! the process exit code. Errors carry theirs ([`crate::error`]).

#[cfg(feature = "agent")]
mod agent;
mod compare;
mod doctor;
mod measure;
mod merge;
#[cfg(feature = "html")]
mod plot;
#[cfg(feature = "html")]
mod report;
mod run;
mod sweep;

use std::io::Write;

use anyhow::Context;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        None => run::run(&cli.run),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Sweep(args)) => sweep::run(&args),
        Some(Command::Compare(args)) => compare::run(&args),
        #[cfg(feature = "html")]
        Some(Command::Plot(args)) => plot::run(&args),
        #[cfg(not(feature = "html"))]
        Some(Command::Plot(_)) => Err(not_built("loadgen plot", "html")),
        Some(Command::Merge(args)) => merge::run(&args),
        #[cfg(feature = "html")]
        Some(Command::Report(args)) => report::run(&args),
        #[cfg(not(feature = "html"))]
        Some(Command::Report(_)) => Err(not_built("loadgen report", "html")),
        Some(Command::Doctor(args)) => doctor::run(&args),
        #[cfg(feature = "agent")]
        Some(Command::Agent(args)) => agent::run(&args),
        #[cfg(not(feature = "agent"))]
        Some(Command::Agent(_)) => Err(not_built("loadgen agent", "agent")),
        Some(Command::Targets) => {
            let mut out = std::io::stdout().lock();
            for m in servers::Model::ALL {
                writeln!(out, "{:<16} {}", m.name(), m.description())?;
            }
            Ok(0)
        }
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "loadgen", &mut script);
            quiet_on_broken_pipe(std::io::stdout().lock().write_all(&script)).context("cannot write the completions")
        }
        Some(Command::Man) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .context("cannot render the man page")?;
            quiet_on_broken_pipe(std::io::stdout().lock().write_all(&page)).context("cannot write the man page")
        }
        Some(Command::Serve(args)) => match servers::cli::serve(&args) {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("echo-server: {e}");
                Ok(servers::cli::exit_code(&e))
            }
        },
    }
}

/// A reader that stopped reading (`loadgen man | head`) is not an error for a command that
/// only prints: exit 0, nothing on stderr.
fn quiet_on_broken_pipe(r: std::io::Result<()>) -> std::io::Result<u8> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other.map(|()| 0),
    }
}

/// The error for a command this binary was built without.
#[allow(dead_code)] // used only in a build without some default feature
fn not_built(what: &'static str, feature: &'static str) -> anyhow::Error {
    crate::error::Error::NotBuilt { what, feature }.into()
}
