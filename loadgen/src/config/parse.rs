//! Parsing and checking of single flag values (durations, rates, percentages, CPU lists,
//! addresses, the churn flags); every refusal names the flag.

use servers::addr::{BadAddr, BadAddrKind};
use servers::ListenAddr;

use super::kinds::{Churn, Shard};
use crate::cli::LoadArgs;
use crate::error::{flag_error as invalid, Error};
use std::time::Duration;

/// Parses a CPU list like `0`, `0-3`, `0,2,4-5`.
pub fn parse_cpus(flag: &'static str, s: &str) -> Result<Vec<usize>, Error> {
    let bad = || invalid(flag, s, "expected CPU numbers like 0, 0-1 or 0,2");
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse::<usize>().map_err(|_| bad())?,
                b.trim().parse::<usize>().map_err(|_| bad())?,
            ),
            None => {
                let v = part.parse::<usize>().map_err(|_| bad())?;
                (v, v)
            }
        };
        if lo > hi || hi >= cpus.max(1024) {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    if out.iter().any(|&c| c >= cpus) {
        return Err(invalid(flag, s, format!("this machine has CPUs 0-{}", cpus - 1)));
    }
    Ok(out)
}

/// The churn flags, checked.
pub(super) fn churn(load: &LoadArgs) -> Result<Churn, Error> {
    let positive = |flag: &'static str, n: u64| {
        if n == 0 {
            Err(invalid(flag, n, "must be at least 1"))
        } else {
            Ok(n)
        }
    };
    match (load.reconnect_every, load.conn_rate, load.msgs_per_conn) {
        (None, None, None) => Ok(Churn::None),
        (Some(n), None, None) => Ok(Churn::ReconnectEvery(positive("--reconnect-every", n)?)),
        (None, Some(r), n) => {
            if !(r.is_finite() && r > 0.0 && r <= 1e7) {
                return Err(invalid(
                    "--conn-rate",
                    r,
                    "must be new connections per second, > 0 (e.g. 1000)",
                ));
            }
            Ok(Churn::ConnRate {
                rate: r,
                msgs_per_conn: positive("--msgs-per-conn", n.unwrap_or(1))?,
            })
        }
        (None, None, Some(n)) => Err(invalid("--msgs-per-conn", n, "only applies with --conn-rate")),
        (Some(n), Some(_), _) | (Some(n), None, Some(_)) => Err(invalid(
            "--reconnect-every",
            n,
            "cannot be combined with --conn-rate/--msgs-per-conn: choose one churn workload",
        )),
    }
}

/// Parses a duration like `500ms`, `10s`, `2m`.
pub fn parse_duration(flag: &'static str, s: &str) -> Result<Duration, Error> {
    if s.trim().starts_with('-') {
        return Err(invalid(flag, s, "must not be negative (use e.g. 500ms, 10s, 2m)"));
    }
    // A bare number is seconds, as in wrk (`-d 30`); a fraction too (`--timeout 0.5`).
    if let Ok(secs) = s.trim().parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| invalid(flag, s, "is not a duration (use e.g. 500ms, 10s, 2m, or seconds: 30)"));
    }
    humantime::parse_duration(s.trim()).map_err(|e| invalid(flag, s, format!("{e} (use e.g. 500ms, 10s, 2m)")))
}

pub(super) fn positive_duration(flag: &'static str, s: &str) -> Result<Duration, Error> {
    let d = parse_duration(flag, s)?;
    if d.is_zero() {
        return Err(invalid(flag, s, "must be greater than zero"));
    }
    Ok(d)
}

/// A number with an optional SI suffix (`10k`, `1.5M`, `2G`, any case for k) or in
/// exponent notation (`1e3`); `None` when it is not one.
pub fn parse_si(s: &str) -> Option<f64> {
    let s = s.trim();
    let (digits, factor) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1e3),
        Some((i, 'M')) => (&s[..i], 1e6),
        Some((i, 'G')) => (&s[..i], 1e9),
        _ => (s, 1.0),
    };
    let v = digits.trim().parse::<f64>().ok()? * factor;
    v.is_finite().then_some(v)
}

/// A count (connections, threads, messages): a whole number, with an SI suffix or in
/// exponent notation (`1k`, `1e3`, `10000`).
pub fn parse_count(flag: &'static str, s: &str) -> Result<u64, Error> {
    match parse_si(s) {
        Some(v) if v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64 => Ok(v as u64),
        _ => Err(invalid(flag, s, "expected a whole number, e.g. 100, 10k or 1e3")),
    }
}

/// A size in bytes: a whole number, or with a binary suffix (`64KiB`, `4MiB`, `1GiB`;
/// `B` allowed).
pub fn parse_size(flag: &'static str, s: &str) -> Result<u64, Error> {
    let t = s.trim();
    let t = t.strip_suffix('B').unwrap_or(t);
    let (digits, factor) = if let Some(d) = t.strip_suffix("Ki") {
        (d, 1u64 << 10)
    } else if let Some(d) = t.strip_suffix("Mi") {
        (d, 1 << 20)
    } else if let Some(d) = t.strip_suffix("Gi") {
        (d, 1 << 30)
    } else {
        (t, 1)
    };
    match digits.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 && (v * factor as f64).fract() == 0.0 && v * (factor as f64) < 1e15 => {
            Ok((v * factor as f64) as u64)
        }
        _ => Err(invalid(flag, s, "expected bytes, e.g. 4096, 64KiB or 4MiB")),
    }
}

/// Parses an open-loop rate in messages per second (`50000`, `50k`, `1.5M`, `5e4`).
pub fn parse_rate(flag: &'static str, s: &str) -> Result<f64, Error> {
    match parse_si(s).ok_or(()) {
        Ok(v) => check_rate(v, s).map_err(|_| rate_error(flag, s)),
        Err(_) => Err(rate_error(flag, s)),
    }
}

pub(super) fn check_rate(v: f64, s: &str) -> Result<f64, Error> {
    if v.is_finite() && v > 0.0 && v <= 1e9 {
        Ok(v)
    } else {
        Err(rate_error("--rate", s))
    }
}

fn rate_error(flag: &'static str, s: &str) -> Error {
    invalid(
        flag,
        s,
        "must be messages per second, above 0 and at most 1e9 (sends a nanosecond apart: no client times finer), \
         e.g. 50000 or 50k, or auto with --slo",
    )
}

/// Parses a percentage like `5%` or `5` (for `compare --threshold`).
pub fn parse_percent(flag: &'static str, s: &str) -> Result<f64, Error> {
    match s.trim().trim_end_matches('%').trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(invalid(flag, s, "expected a percentage, e.g. 5%")),
    }
}

/// Parses `--addr`: a malformed address is a usage error (exit 2), a well-formed one whose
/// host does not resolve means the run cannot start (exit 3).
pub fn parse_addr(s: &str) -> Result<ListenAddr, Error> {
    s.parse().map_err(|e: BadAddr| match e.kind {
        BadAddrKind::Unresolvable => Error::CannotRun(format!("--addr '{s}': {}", e.reason)),
        BadAddrKind::Syntax => invalid(
            "--addr",
            s,
            e.reason + "; expected HOST:PORT, [::1]:PORT, unix:/path, udp://HOST:PORT or icmp://HOST",
        ),
    })
}

/// Parses `--shard I/N` (0 <= I < N), or `auto` with the scheduler it was read from.
pub(super) fn parse_shard(s: &str) -> Result<(Shard, Option<String>), Error> {
    if let Some(rest) = s.trim().strip_prefix("auto") {
        let (shard, source) = auto_shard(s, rest, &|k| std::env::var(k).ok())?;
        eprintln!("shard {shard} from {source}");
        return Ok((shard, Some(source)));
    }
    let bad = |why: &str| invalid("--shard", s, why);
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| bad("expected I/N, e.g. 0/3 for the first of three"))?;
    let (index, count) = match (i.trim().parse::<u32>(), n.trim().parse::<u32>()) {
        (Ok(i), Ok(n)) => (i, n),
        _ => return Err(bad("expected I/N, e.g. 0/3 for the first of three")),
    };
    if count == 0 || index >= count {
        return Err(bad("I must be below N (shards count from 0: 0/3, 1/3, 2/3)"));
    }
    Ok((Shard { index, count }, None))
}

/// `--shard auto` (or `auto/N`): the shard from the scheduler's environment, read through
/// `env`, with where it came from: a Slurm job array (`SLURM_ARRAY_TASK_ID` less
/// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`), a Slurm step (`srun`:
/// `SLURM_PROCID` of `SLURM_NTASKS`), or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`,
/// of N from `auto/N` or `ECHO_BENCH_SHARDS`). Elsewhere: exit 2 naming what it looked for.
pub(super) fn auto_shard(s: &str, rest: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(Shard, String), Error> {
    let bad = |why: String| invalid("--shard", s, why);
    let num = |k: &str| -> Result<Option<u32>, Error> {
        env(k)
            .map(|v| {
                v.trim()
                    .parse::<u32>()
                    .map_err(|_| bad(format!("{k}={v} is not a count")))
            })
            .transpose()
    };
    let given = match rest.strip_prefix('/') {
        Some(n) => Some(
            n.trim()
                .parse::<u32>()
                .map_err(|_| bad("expected auto or auto/N".into()))?,
        ),
        None if rest.is_empty() => None,
        None => return Err(bad("expected auto or auto/N".into())),
    };
    let found = if let (Some(id), Some(count)) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let index = id
            .checked_sub(min)
            .ok_or_else(|| bad(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")))?;
        (
            index,
            given.unwrap_or(count),
            "a Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT)",
        )
    } else if let (Some(id), Some(count)) = (num("SLURM_PROCID")?, num("SLURM_NTASKS")?) {
        (id, given.unwrap_or(count), "a Slurm step (SLURM_PROCID, SLURM_NTASKS)")
    } else if let Some(id) = num("JOB_COMPLETION_INDEX")? {
        let count = given.or(num("ECHO_BENCH_SHARDS")?).ok_or_else(|| {
            bad(
                "JOB_COMPLETION_INDEX gives the index, not the count: write --shard auto/N or set ECHO_BENCH_SHARDS"
                    .into(),
            )
        })?;
        (id, count, "a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)")
    } else {
        return Err(bad(
            "no scheduler's variables: looked for SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, SLURM_PROCID with \
             SLURM_NTASKS, and JOB_COMPLETION_INDEX; give --shard I/N"
                .into(),
        ));
    };
    let (index, count, source) = found;
    if count == 0 || index >= count {
        return Err(bad(format!(
            "{source} gave shard {index} of {count}: the index must be below the count"
        )));
    }
    Ok((Shard { index, count }, source.to_string()))
}

/// Parses `--start-at`: unix seconds (fractions allowed) or RFC 3339; refuses a time more
/// than a second in the past.
pub(super) fn parse_start_at(s: &str) -> Result<std::time::SystemTime, Error> {
    let t = match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => std::time::UNIX_EPOCH + Duration::from_secs_f64(secs),
        Ok(_) => return Err(invalid("--start-at", s, "expected unix seconds or an RFC 3339 time")),
        Err(_) => humantime::parse_rfc3339_weak(s.trim()).map_err(|e| {
            invalid(
                "--start-at",
                s,
                format!("{e}; expected unix seconds or e.g. 2026-11-26T10:00:00Z"),
            )
        })?,
    };
    let now = std::time::SystemTime::now();
    if now.duration_since(t).is_ok_and(|late| late > Duration::from_secs(1)) {
        return Err(invalid(
            "--start-at",
            s,
            "is more than a second in the past; choose a time every shard can still meet",
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_bare_seconds_as_wrk_does() {
        let d = |s| parse_duration("--duration", s);
        assert_eq!(d("30").unwrap(), Duration::from_secs(30));
        assert_eq!(d("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(d("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(d("2m").unwrap(), Duration::from_secs(120));
        for bad in ["-1", "inf", "nan", "1e400", "ten"] {
            let e = d(bad).unwrap_err().to_string();
            assert!(e.contains("--duration") && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn shard_auto_reads_each_schedulers_variables_and_names_them_when_absent() {
        let with = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let (s, from) = auto_shard(
            "auto",
            "",
            &with(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "3")]),
        )
        .unwrap();
        assert_eq!((s.index, s.count), (2, 3));
        assert!(from.contains("Slurm job array"));
        const ARRAY: [(&str, &str); 3] = [
            ("SLURM_ARRAY_TASK_ID", "11"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        let (s, _) = auto_shard("auto", "", &with(&ARRAY)).unwrap();
        assert_eq!(s.index, 1, "an array from 10 counts from its minimum");
        let (s, from) = auto_shard("auto", "", &with(&[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "4")])).unwrap();
        assert_eq!((s.index, s.count), (1, 4));
        assert!(from.contains("srun") || from.contains("Slurm step"));
        let (s, from) = auto_shard("auto/5", "/5", &with(&[("JOB_COMPLETION_INDEX", "4")])).unwrap();
        assert_eq!((s.index, s.count), (4, 5));
        assert!(from.contains("Kubernetes"));
        let (s, _) = auto_shard(
            "auto",
            "",
            &with(&[("JOB_COMPLETION_INDEX", "0"), ("ECHO_BENCH_SHARDS", "2")]),
        )
        .unwrap();
        assert_eq!((s.index, s.count), (0, 2));
        let e = auto_shard("auto", "", &with(&[("JOB_COMPLETION_INDEX", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("auto/N"), "{e}");
        let e = auto_shard("auto", "", &with(&[])).unwrap_err().to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID") && e.contains("JOB_COMPLETION_INDEX") && e.starts_with("--shard"),
            "{e}"
        );
        let e = auto_shard("auto", "", &with(&[("SLURM_PROCID", "4"), ("SLURM_NTASKS", "4")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("below the count"), "{e}");
    }
}
