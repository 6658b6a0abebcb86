//! The descriptor limit: raised to the hard limit, and checked against what a run needs
//! before anything is opened.

use crate::config::ConfigError;

/// Descriptors a run needs besides one per connection: stdio, epoll and timer per thread,
/// the server child's pipe, report files, slack.
pub fn needed(conns: usize, threads: usize) -> u64 {
    conns as u64 + 4 * threads as u64 + 64
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and checks that `conns` connections
/// fit. Returns the limit now in force.
pub fn ensure_descriptors(conns: usize, threads: usize) -> Result<u64, ConfigError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to / read from a valid local struct.
    let limit = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Ok(u64::MAX); // unknown: let connects fail and be counted instead
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    let needed = needed(conns, threads);
    if needed > limit {
        return Err(ConfigError::TooManyConns { conns, needed, limit });
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_more_connections_than_descriptors() {
        let err = ensure_descriptors(50_000_000, 2).unwrap_err().to_string();
        assert!(err.contains("--conns 50000000") && err.contains("limit"), "{err}");
        assert!(ensure_descriptors(10, 2).is_ok());
    }
}
