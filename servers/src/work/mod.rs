//! Per-message server work (`--work SPEC`): a service step applied to every message before
//! its echo, so the concurrency models have something to do besides the kernel's TCP path.
//!
//! A SPEC is one or more steps joined by `+`, each `KIND:DURATION`:
//! - kinds: `cpu` (burn that much CPU on the serving thread), `wait` (a wait that needs no
//!   CPU, like a backend call: each model waits its own way), `block` (a blocking sleep on
//!   the serving thread, whatever the model: the classic mistake);
//! - durations: fixed (`100us`, `1ms`), `exp:MEAN` (exponential), `bimodal:FAST,SLOW,P%`
//!   (P% of messages take SLOW, the rest FAST).
//!
//! e.g. `cpu:20us+wait:exp:1ms`. Random durations come from a per-connection generator
//! seeded from `--seed` and the connection's number, so a run repeats.
//!
//! A message is `msg_size` bytes of a stream ([`Framer`]), or one datagram. Bytes are echoed
//! in order; the bytes that complete a message go out only once its work is done.

pub mod done;
mod kind;
pub mod timer;

pub use kind::Kind;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How long a step takes, per message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Always this long.
    Fixed(Duration),
    /// Exponentially distributed with this mean.
    Exp(Duration),
    /// `slow` with probability `p` (0..1), else `fast`.
    Bimodal {
        /// The common duration.
        fast: Duration,
        /// The rare one.
        slow: Duration,
        /// Probability of `slow`.
        p: f64,
    },
}

/// One step of a SPEC.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// What it costs.
    pub kind: Kind,
    /// How long.
    pub dist: Dist,
}

/// A parsed SPEC, kept with its text (reports record the spec as given).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkSpec {
    /// The steps, in order.
    pub steps: Vec<Step>,
    text: String,
}

impl fmt::Display for WorkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a SPEC does not parse (the message says what to write instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadWork(pub String);

impl fmt::Display for BadWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadWork {}

/// A duration like `100us`, `1ms`, `1.5ms`, `2s`; strictly positive.
fn duration(s: &str) -> Result<Duration, BadWork> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic() || c == 'µ').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "" => {
            return Err(BadWork(format!(
                "'{s}': a duration needs a unit (ns, us, ms, s), e.g. 100us"
            )))
        }
        other => {
            return Err(BadWork(format!(
                "'{s}': unknown unit '{other}': use ns, us, ms or s (per-message work is short), e.g. 100us"
            )))
        }
    };
    match num.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v * scale < 3600.0 => Ok(Duration::from_secs_f64(v * scale)),
        _ => Err(BadWork(format!(
            "'{s}': a duration must be a positive number below an hour with its unit, e.g. 100us"
        ))),
    }
}

impl FromStr for Dist {
    type Err = BadWork;

    fn from_str(s: &str) -> Result<Self, BadWork> {
        if let Some(mean) = s.strip_prefix("exp:") {
            return Ok(Dist::Exp(duration(mean)?));
        }
        if let Some(rest) = s.strip_prefix("bimodal:") {
            let parts: Vec<&str> = rest.split(',').collect();
            let [fast, slow, p] = parts.as_slice() else {
                return Err(BadWork(format!(
                    "'{s}': expected bimodal:FAST,SLOW,P%, e.g. bimodal:100us,10ms,1%"
                )));
            };
            let p = p
                .trim()
                .trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| BadWork(format!("'{s}': P% must be a percentage between 0 and 100")))?;
            return Ok(Dist::Bimodal {
                fast: duration(fast)?,
                slow: duration(slow)?,
                p: p / 100.0,
            });
        }
        Ok(Dist::Fixed(duration(s)?))
    }
}

impl FromStr for WorkSpec {
    type Err = BadWork;

    fn from_str(s: &str) -> Result<Self, BadWork> {
        let steps = s
            .split('+')
            .map(|step| {
                let (kind, dist) = step.trim().split_once(':').ok_or_else(|| {
                    BadWork(format!(
                        "'{step}': a step is KIND:DURATION with KIND cpu, wait or block, e.g. cpu:20us"
                    ))
                })?;
                let kind = match kind {
                    "cpu" => Kind::Cpu,
                    "wait" => Kind::Wait,
                    "block" => Kind::Block,
                    other => return Err(BadWork(format!("unknown kind '{other}': use cpu, wait or block"))),
                };
                Ok(Step {
                    kind,
                    dist: dist.parse()?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WorkSpec {
            steps,
            text: s.trim().to_string(),
        })
    }
}

/// What one message costs, drawn from a SPEC: CPU to burn, time to wait, time to block.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    /// CPU to burn on the serving thread.
    pub cpu: Duration,
    /// Time to wait without CPU.
    pub wait: Duration,
    /// Time to sleep on the serving thread.
    pub block: Duration,
}

impl Cost {
    /// Burns the CPU and takes the blocking sleep on this thread, recording what each
    /// took ([`done`]); returns the wait, which the caller waits its own way and records.
    pub fn run_inline(self) -> Duration {
        if !self.cpu.is_zero() {
            let started = Instant::now();
            burn(self.cpu);
            done::record_since(Kind::Cpu, self.cpu, started);
        }
        if !self.block.is_zero() {
            done::sleep(Kind::Block, self.block);
        }
        self.wait
    }
}

/// Spins for `d` of wall time on this thread (CPU work: the thread stays runnable).
pub fn burn(d: Duration) {
    if d.is_zero() {
        return;
    }
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

/// A connection's source of per-message costs.
#[derive(Debug, Clone)]
pub struct Sampler {
    steps: Vec<Step>,
    rng: u64,
}

impl Sampler {
    /// The sampler of connection `conn` under `spec`, seeded from `seed`.
    pub fn new(spec: &WorkSpec, seed: u64, conn: u64) -> Sampler {
        // splitmix64 of (seed, conn): independent streams per connection, repeatable.
        let mut s = Sampler {
            steps: spec.steps.clone(),
            rng: seed ^ conn.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        };
        s.next_u64();
        s
    }

    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// The cost of the next message.
    pub fn draw(&mut self) -> Cost {
        let mut cost = Cost::default();
        for i in 0..self.steps.len() {
            let step = self.steps[i];
            let d = match step.dist {
                Dist::Fixed(d) => d,
                Dist::Exp(mean) => mean.mul_f64(-self.unit().ln()),
                Dist::Bimodal { fast, slow, p } => {
                    if self.unit() <= p {
                        slow
                    } else {
                        fast
                    }
                }
            };
            match step.kind {
                Kind::Cpu => cost.cpu += d,
                Kind::Wait => cost.wait += d,
                Kind::Block => cost.block += d,
            }
        }
        cost
    }
}

/// Splits a stream into messages of `size` bytes: tells, for the bytes just read, where
/// each message ends, so the work of a message is done before the bytes that complete it
/// are echoed.
#[derive(Debug, Clone, Copy)]
pub struct Framer {
    size: usize,
    /// Bytes of the current (incomplete) message seen so far.
    have: usize,
}

impl Framer {
    /// A framer of `size`-byte messages (at least 1).
    pub fn new(size: usize) -> Framer {
        Framer {
            size: size.max(1),
            have: 0,
        }
    }

    /// Of `len` bytes just read, how many come before the next message boundary, and
    /// whether they complete a message. Call again with the rest.
    pub fn next_piece(&mut self, len: usize) -> (usize, bool) {
        let need = self.size - self.have;
        if len >= need {
            self.have = 0;
            (need, true)
        } else {
            self.have += len;
            (len, false)
        }
    }
}

/// A number for each new connection of this process, which seeds its sampler.
pub fn next_conn() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The work every model applies: the spec, the seed, and the message size of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    /// What each message costs.
    pub spec: WorkSpec,
    /// Seed of every connection's sampler.
    pub seed: u64,
    /// Bytes per message on a stream.
    pub msg_size: usize,
}

impl Work {
    /// Whether a message may wait (a `wait` step).
    pub fn waits(&self) -> bool {
        self.spec.steps.iter().any(|s| s.kind == Kind::Wait)
    }

    /// Connection `conn`'s sampler and framer.
    pub fn for_conn(&self, conn: u64) -> (Sampler, Framer) {
        (Sampler::new(&self.spec, self.seed, conn), Framer::new(self.msg_size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let w: WorkSpec = "cpu:20us+wait:exp:1ms+block:bimodal:100us,10ms,5%".parse().unwrap();
        assert_eq!(w.steps.len(), 3);
        assert_eq!(
            w.steps[0],
            Step {
                kind: Kind::Cpu,
                dist: Dist::Fixed(Duration::from_micros(20))
            }
        );
        assert_eq!(w.steps[1].dist, Dist::Exp(Duration::from_millis(1)));
        assert!(matches!(w.steps[2].dist, Dist::Bimodal { p, .. } if (p - 0.05).abs() < 1e-12));
        assert_eq!(w.to_string(), "cpu:20us+wait:exp:1ms+block:bimodal:100us,10ms,5%");
        for (bad, why) in [
            ("sleep:1ms", "unknown kind"),
            ("cpu:0us", "positive"),
            ("wait:exp:-1ms", "positive"),
            ("cpu:10", "unit"),
            ("cpu:1h", "unknown unit 'h'"),
            ("cpu:4000s", "below an hour"),
            ("cpu", "KIND:DURATION"),
            ("block:bimodal:1ms,2ms", "bimodal:FAST,SLOW,P%"),
        ] {
            let e = bad.parse::<WorkSpec>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn samples_repeat_per_seed_and_have_the_right_mean() {
        let w: WorkSpec = "wait:exp:1ms".parse().unwrap();
        let draw = |seed, conn| {
            let mut s = Sampler::new(&w, seed, conn);
            (0..20_000).map(|_| s.draw().wait.as_secs_f64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 2), draw(1, 2), "seeded: the same run twice");
        assert_ne!(draw(1, 2), draw(1, 3), "each connection its own stream");
        let xs = draw(7, 0);
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.001).abs() < 0.00005, "mean {mean}");
        let w: WorkSpec = "block:bimodal:1ms,10ms,10%".parse().unwrap();
        let mut s = Sampler::new(&w, 3, 0);
        let slow = (0..10_000)
            .filter(|_| s.draw().block == Duration::from_millis(10))
            .count();
        assert!((800..1200).contains(&slow), "{slow}");
    }

    #[test]
    fn the_framer_finds_message_ends_across_reads() {
        let mut f = Framer::new(64);
        assert_eq!(f.next_piece(40), (40, false));
        assert_eq!(f.next_piece(100), (24, true)); // completes the first message
        assert_eq!(f.next_piece(76), (64, true)); // a whole second one
        assert_eq!(f.next_piece(12), (12, false));
    }
}
