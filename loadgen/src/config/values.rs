//! The flags `sweep` can vary (`--threads`, `--server-workers`, `--server-procs`,
//! `--sock-buf`, `--engine`, `--pacing`): one parser per flag for one value, used by `run`
//! (which takes exactly one) and by `sweep` (which takes a comma-separated list of them).

use super::kinds::{TargetSpec, MAX_THREADS};
use crate::cli::choice::{Engine, Pacing};
use crate::error::{flag_error as invalid, Error};

/// Splits a flag's value into its comma-separated items (one item without a comma).
pub fn items<'a>(flag: &'static str, s: &'a str) -> Result<Vec<&'a str>, Error> {
    let v: Vec<&str> = s.split(',').map(str::trim).filter(|x| !x.is_empty()).collect();
    if v.is_empty() {
        return Err(invalid(
            flag,
            s,
            "expected a value, or for sweep a comma-separated list",
        ));
    }
    Ok(v)
}

/// The one value of a flag in a single run: a list is for `sweep`.
pub fn one<'a>(flag: &'static str, s: &'a str) -> Result<&'a str, Error> {
    match items(flag, s)?.as_slice() {
        [one] => Ok(one),
        _ => Err(invalid(flag, s, "one value per run; a list is for `loadgen sweep`")),
    }
}

fn count(flag: &'static str, s: &str, max: u64) -> Result<u64, Error> {
    match super::parse::parse_count(flag, s)? {
        n if (1..=max).contains(&n) => Ok(n),
        n => Err(invalid(flag, n, format!("must be between 1 and {max}"))),
    }
}

/// `--threads`: client threads.
pub fn threads(s: &str) -> Result<usize, Error> {
    count("--threads", s, MAX_THREADS as u64).map(|n| n as usize)
}

/// `--server-workers`: workers of the spawned server.
pub fn server_threads(s: &str) -> Result<u32, Error> {
    count("--server-workers", s, 100_000).map(|n| n as u32)
}

/// `--server-procs`: server processes sharing the port.
pub fn server_procs(s: &str) -> Result<u32, Error> {
    count("--server-procs", s, 64).map(|n| n as u32)
}

/// `--sock-buf`: socket buffer bytes.
pub fn sock_buf(s: &str) -> Result<usize, Error> {
    // Below 4 KiB the kernel raises the value to its own floor (about 2.3 KiB to receive,
    // 4.5 KiB to send) without a word: the run would not use what was asked.
    match super::parse::parse_size("--sock-buf", s)? {
        n if (4096..=64 << 20).contains(&n) => Ok(n as usize),
        n => Err(invalid(
            "--sock-buf",
            s,
            format!("{n} bytes: must be between 4096 (below it the kernel uses its own floor) and 67108864 bytes"),
        )),
    }
}

/// `--work`: a server's per-message work, which only a server loadgen starts can take.
pub fn work(s: &str, target: &TargetSpec) -> Result<Option<servers::work::WorkSpec>, Error> {
    let spec = work_spec(s)?;
    if let (Some(_), TargetSpec::Addr(_)) = (&spec, target) {
        return Err(invalid(
            "--work",
            s,
            "the work belongs to the server: start it with `echo-server --model M --work SPEC --msg-size B`, or use --target",
        ));
    }
    Ok(spec)
}

/// One `--work` spec; `none` is the plain echo.
pub fn work_spec(s: &str) -> Result<Option<servers::work::WorkSpec>, Error> {
    match s.trim() {
        "none" => Ok(None),
        spec => spec
            .parse()
            .map(Some)
            .map_err(|e: servers::work::BadWork| invalid("--work", spec, e.to_string())),
    }
}

/// One value of an enum flag that sweep also takes as a list (so clap holds the text):
/// the names are the enum's own (its `ValueEnum`), and the refusal lists them.
fn one_of<T: clap::ValueEnum>(flag: &'static str, s: &str) -> Result<T, Error> {
    T::from_str(s, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        invalid(flag, s, format!("expected one of {}", names.join(", ")))
    })
}

/// `--engine`.
pub fn engine(s: &str) -> Result<Engine, Error> {
    one_of("--engine", s)
}

/// `--pacing`.
pub fn pacing(s: &str) -> Result<Pacing, Error> {
    one_of("--pacing", s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_run_and_lists_for_sweep() {
        assert_eq!(one("--threads", "2").unwrap(), "2");
        let e = one("--threads", "1,2").unwrap_err().to_string();
        assert!(e.starts_with("--threads '1,2'") && e.contains("sweep"), "{e}");
        assert_eq!(items("--engine", "epoll, uring").unwrap(), ["epoll", "uring"]);
        assert!(engine("io").unwrap_err().to_string().starts_with("--engine"));
        assert_eq!(pacing("spin").unwrap(), Pacing::Spin);
        assert!(threads("0").is_err() && server_procs("65").is_err());
        assert_eq!(sock_buf("64KiB").unwrap(), 65536);
    }
}
