//! Command-line helpers shared by `echo-server` and `loadgen`: a usage error is one line on
//! stderr and exit code 2, the contract both binaries keep.

/// Parses the command line into `T`, or exits: help and version go to stdout with code 0;
/// a usage error becomes one line on stderr (clap's message with its details folded in,
/// without the usage block) and exit code 2.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            std::process::exit(2);
        }
    }
}

/// Folds a multi-line clap message into one line, dropping the usage and help hints.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_messages_fold_into_one_line() {
        let msg = "error: the following required arguments were not provided:\n  --model <MODEL>\n\nUsage: echo-server --model <MODEL>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(msg),
            "error: the following required arguments were not provided: --model <MODEL>"
        );
    }
}
