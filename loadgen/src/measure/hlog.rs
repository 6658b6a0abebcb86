//! HdrHistogram interval logs (`.hlog`), the format HdrHistogram's own tools read
//! (HistogramLogProcessor, HdrHistogramVisualizer, HdrHistogram_rust's `IntervalLogIterator`).
//!
//! Written as the run goes, one line per completed interval, flushed each time, so a crash
//! loses at most the interval in progress. Values are nanoseconds; the `Interval_Max` column
//! is in milliseconds (divisor 1e6, as Java's HistogramLogWriter does for ns recordings).
//! Interval start times are relative to `BaseTime` (absolute, seconds since the epoch), so
//! logs from several hosts line up and merge exactly ([`read`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::error::Error;
use crate::os::files::Dest;

/// Divisor of the `Interval_Max` column: ns values shown in ms.
const MAX_VALUE_DIVISOR: f64 = 1e6;
/// Tag of the raw (service time) histogram in open-loop logs; the latency one is untagged,
/// so tools that read only untagged intervals see the corrected latency.
pub const RAW_TAG: &str = "raw";

/// An interval log being written. A write that fails (a full disk, an I/O error, a reader
/// that closed its pipe) does not stop the run: the log warns once, naming itself, stops
/// writing, and [`HlogWriter::finish`] reports the failure (removing an incomplete regular
/// file, which no reader could trust).
pub struct HlogWriter {
    dest: Dest,
    out: Option<BufWriter<Box<dyn Write + Send>>>,
    failed: Option<String>,
    base: SystemTime,
    serializer: V2DeflateSerializer,
    buf: Vec<u8>,
}

impl HlogWriter {
    /// Creates `path` (a file, or a stream: see `report::dest::Dest`) and writes the headers; `base` is
    /// the time interval starts count from. Errors only when it cannot be opened at all.
    pub fn create(path: &Path, base: SystemTime) -> anyhow::Result<Self> {
        let dest = Dest::of(path);
        let sink: Box<dyn Write + Send> = match &dest {
            Dest::Stdout => Box::new(std::io::stdout()),
            Dest::Stderr => Box::new(std::io::stderr()),
            Dest::Special(p) => Box::new(
                crate::os::files::open_special(p)
                    .with_context(|| format!("cannot open interval log {}", p.display()))?,
            ),
            Dest::File(p) => {
                Box::new(File::create(p).with_context(|| format!("cannot create interval log {}", p.display()))?)
            }
        };
        let mut w = HlogWriter {
            dest,
            out: Some(BufWriter::new(sink)),
            failed: None,
            base,
            serializer: V2DeflateSerializer::new(),
            buf: Vec::new(),
        };
        let epoch = base.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let headers = format!(
            "#[Logged with echo-bench loadgen {}]\n#[Histogram log format version 1.3]\n\
             #[StartTime: {epoch:.3} (seconds since epoch), {}]\n#[BaseTime: {epoch:.3} (seconds since epoch)]\n\
             #[Values in nanoseconds; Interval_Max in milliseconds]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
            env!("CARGO_PKG_VERSION"),
            humantime::format_rfc3339_millis(base),
        );
        w.write(headers.as_bytes());
        Ok(w)
    }

    /// Appends one interval starting at `start` (since the base time) and flushes.
    pub fn interval(&mut self, start: Duration, length: Duration, h: &Histogram<u64>, tag: Option<&str>) {
        if self.out.is_none() {
            return;
        }
        self.buf.clear();
        if let Err(e) = self.serializer.serialize(h, &mut self.buf) {
            return self.fail(format!("cannot encode a histogram: {e:?}"));
        }
        let line = format!(
            "{}{:.3},{:.3},{:.3},{}\n",
            tag.map(|t| format!("Tag={t},")).unwrap_or_default(),
            start.as_secs_f64(),
            length.as_secs_f64(),
            h.max() as f64 / MAX_VALUE_DIVISOR,
            base64::engine::general_purpose::STANDARD.encode(&self.buf)
        );
        self.write(line.as_bytes());
    }

    /// Appends a comment line `#[text]` (readers of the format skip it) and flushes.
    pub fn comment(&mut self, text: &str) {
        self.write(format!("#[{text}]\n").as_bytes());
    }

    /// The base time.
    pub fn base(&self) -> SystemTime {
        self.base
    }

    /// Ends the log: `Err` naming it when any write failed (an incomplete regular file is
    /// removed).
    pub fn finish(mut self) -> Result<(), String> {
        if let Some(mut out) = self.out.take() {
            if let Err(e) = out.flush() {
                self.fail_with(e.to_string());
            }
        }
        match self.failed {
            None => Ok(()),
            Some(why) => {
                if let Dest::File(p) = &self.dest {
                    let _ = std::fs::remove_file(p);
                    Err(format!("{why}; the incomplete file was removed"))
                } else {
                    Err(why)
                }
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let Some(out) = self.out.as_mut() else { return };
        if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
            self.fail_with(e.to_string());
        }
    }

    fn fail_with(&mut self, error: String) {
        self.fail(format!("cannot write interval log {}: {error}", self.dest.name()));
    }

    /// Stops writing after the first failure, with one warning (the run goes on).
    fn fail(&mut self, why: String) {
        // Dropping a BufWriter whose writes fail would try once more: forget its buffer.
        if let Some(out) = self.out.take() {
            let _ = out.into_parts();
        }
        eprintln!("WARNING: {why}; the interval log stops here, the run goes on");
        self.failed = Some(why);
    }
}

/// One interval read back from a log.
#[derive(Debug, Clone)]
pub struct LoggedInterval {
    /// Absolute start (seconds since the epoch, when the log has a base or start time).
    pub start: Duration,
    /// Length.
    pub length: Duration,
    /// Tag, if any.
    pub tag: Option<String>,
    /// The histogram.
    pub histogram: Histogram<u64>,
}

/// Checks an encoded histogram's length fields against the bytes present, before the
/// decoder allocates what they claim (a field of 0xFFFFFFFF would allocate 4 GiB): the
/// plain payload must fit in what follows its 40-byte header; a compressed one in what
/// follows its 8 bytes, and what it inflates to within deflate's largest ratio (1032:1).
fn check_lengths(raw: &[u8]) -> Result<(), String> {
    const V2: u32 = 0x1c84_9303 | 0x10; // the cookies as hdrhistogram writes them
    const V2_COMPRESSED: u32 = 0x1c84_9304 | 0x10;
    let word = |b: &[u8], at: usize| -> Option<u32> { Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?)) };
    let short = || "it is shorter than its header".to_string();
    match word(raw, 0).ok_or_else(short)? {
        V2 => {
            let len = word(raw, 4).ok_or_else(short)? as usize;
            (len <= raw.len().saturating_sub(40)).then_some(()).ok_or_else(|| {
                format!(
                    "its payload claims {len} bytes, {} are present",
                    raw.len().saturating_sub(40)
                )
            })
        }
        V2_COMPRESSED => {
            let len = word(raw, 4).ok_or_else(short)? as usize;
            let present = raw.len() - 8;
            if len > present {
                return Err(format!(
                    "its compressed payload claims {len} bytes, {present} are present"
                ));
            }
            let mut head = [0u8; 8];
            let mut inflate = flate2::read::ZlibDecoder::new(&raw[8..8 + len]);
            std::io::Read::read_exact(&mut inflate, &mut head).map_err(|e| format!("it does not inflate: {e}"))?;
            let inner = word(&head, 4).unwrap_or(0) as usize;
            (inner <= len.saturating_mul(1032))
                .then_some(())
                .ok_or_else(|| format!("it claims {inner} bytes inflated from {len}, more than deflate can give"))
        }
        _ => Ok(()), // the decoder names an unknown cookie
    }
}

/// The largest interval log read (4 GiB: a day of 1-second intervals of every tag is
/// a few hundred MB).
pub const MAX_LOG_BYTES: u64 = 4 << 30;

/// Reads every interval of a log, with absolute start times.
pub fn read(path: &Path) -> anyhow::Result<Vec<LoggedInterval>> {
    Ok(read_with_notes(path)?.0)
}

/// Reads every interval of a log, and the text of its comment lines that start with
/// `prefix` (e.g. a shard's stamp), without the prefix.
pub fn read_with_notes(path: &Path) -> anyhow::Result<(Vec<LoggedInterval>, Vec<String>)> {
    let (intervals, notes) = read_all(path)?;
    if intervals.is_empty() {
        bail!(Error::Input(format!("{} holds no interval histogram", path.display())));
    }
    Ok((intervals, notes))
}

/// [`read_with_notes`], also for a log that holds no interval (a shard that stopped before
/// its window: `merge` names it instead of refusing the others).
pub fn read_all(path: &Path) -> anyhow::Result<(Vec<LoggedInterval>, Vec<String>)> {
    crate::os::files::check_input_file(path, "an interval log", MAX_LOG_BYTES)?;
    let bytes =
        std::fs::read(path).map_err(|e| Error::Input(format!("cannot read interval log {}: {e}", path.display())))?;
    let notes = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("#[")?.strip_suffix(']').map(str::to_string))
        .collect();
    let mut base = Duration::ZERO;
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    let mut total: u64 = 0;
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| {
            let hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } = e;
            Error::Input(format!(
                "{} is not an HdrHistogram interval log (unreadable at byte {offset}); give the file --hdr-log wrote",
                path.display()
            ))
        })?;
        match entry {
            LogEntry::BaseTime(t) => base = t,
            // StartTime alone (no BaseTime) means timestamps are relative to it.
            LogEntry::StartTime(t) if base.is_zero() => base = t,
            LogEntry::StartTime(_) => {}
            LogEntry::Interval(iv) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(iv.encoded_histogram())
                    .map_err(|e| Error::Input(format!("{}: bad base64 in an interval: {e}", path.display())))?;
                check_lengths(&raw).map_err(|why| {
                    Error::Input(format!("{}: a bad histogram in an interval: {why}", path.display()))
                })?;
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut raw.as_slice())
                    .map_err(|e| Error::Input(format!("{}: bad histogram in an interval: {e}", path.display())))?;
                // Counts whose sum a u64 cannot hold would wrap inside every later sum.
                let count = histogram
                    .iter_recorded()
                    .try_fold(0u64, |sum, v| sum.checked_add(v.count_at_value()))
                    .and_then(|n| total.checked_add(n));
                total = count.ok_or_else(|| {
                    Error::Input(format!(
                        "{}: its counts add up to more than a u64 holds (2^64): not a log a run wrote",
                        path.display()
                    ))
                })?;
                out.push(LoggedInterval {
                    start: base + iv.start_timestamp(),
                    length: iv.duration(),
                    tag: iv.tag().map(|t| t.as_str().to_string()),
                    histogram,
                });
            }
        }
    }
    Ok((out, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::record::new_histogram;

    #[test]
    fn writes_and_reads_back_exactly() {
        let path = std::env::temp_dir().join(format!("hlog-unit-{}.hlog", std::process::id()));
        let base = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let mut w = HlogWriter::create(&path, base).unwrap();
        let mut a = new_histogram();
        let mut b = new_histogram();
        for v in 1..1000u64 {
            a.record(v * 1000).unwrap();
            b.record(v * 7919).unwrap();
        }
        w.interval(Duration::ZERO, Duration::from_secs(1), &a, None);
        w.interval(Duration::from_secs(1), Duration::from_millis(500), &b, Some(RAW_TAG));
        w.finish().unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].histogram, a);
        assert_eq!(back[1].histogram, b);
        assert_eq!(back[1].tag.as_deref(), Some(RAW_TAG));
        assert_eq!(back[1].start, Duration::from_millis(1_700_000_001_250));
        assert_eq!(back[1].length, Duration::from_millis(500));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_log_that_cannot_be_written_fails_once_and_is_reported_at_the_end() {
        let mut w = HlogWriter::create(Path::new("/dev/full"), SystemTime::now()).unwrap();
        w.comment("more");
        w.interval(Duration::ZERO, Duration::from_secs(1), &new_histogram(), None);
        let why = w.finish().unwrap_err();
        assert!(why.contains("/dev/full") && why.contains("No space left"), "{why}");
    }

    #[test]
    fn refuses_files_that_are_not_logs() {
        let path = std::env::temp_dir().join(format!("hlog-bad-{}.hlog", std::process::id()));
        std::fs::write(&path, "hello\n").unwrap();
        assert!(read(&path).is_err());
        assert!(read(Path::new("/nonexistent/x.hlog"))
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/x.hlog"));
        std::fs::remove_file(&path).unwrap();
    }

    /// A log of one interval holding `h`, with its encoded bytes passed through `tamper`.
    fn log_with(name: &str, h: &Histogram<u64>, tamper: impl Fn(&mut Vec<u8>)) -> std::path::PathBuf {
        use base64::Engine as _;
        let path = std::env::temp_dir().join(format!("hlog-{name}-{}.hlog", std::process::id()));
        let mut raw = Vec::new();
        V2DeflateSerializer::new().serialize(h, &mut raw).unwrap();
        tamper(&mut raw);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&raw);
        std::fs::write(
            &path,
            format!("#[BaseTime: 1700000000.000 (seconds since epoch)]\n0.000,1.000,1.000,{encoded}\n"),
        )
        .unwrap();
        path
    }

    #[test]
    fn hostile_logs_are_refused_without_allocating_or_looping() {
        let mut h = new_histogram();
        h.record(1000).unwrap();
        // The control: untampered, it reads.
        assert_eq!(read(&log_with("ok", &h, |_| {})).unwrap()[0].histogram, h);
        // A compressed length of 0xFFFFFFFF (it once allocated 4 GiB).
        let e = read(&log_with("len", &h, |raw| raw[4..8].copy_from_slice(&[0xFF; 4]))).unwrap_err();
        assert!(e.to_string().contains("claims 4294967295 bytes"), "{e:#}");
        // A plain (uncompressed) histogram whose payload length claims 4 GiB.
        let e = check_lengths(&[&0x1c84_9313u32.to_be_bytes()[..], &[0xFF; 4], &[0; 40]].concat()).unwrap_err();
        assert!(e.contains("claims 4294967295"), "{e}");
        // Counts that overflow a u64 (five buckets of 2^62; a merge of them once never ended).
        let mut big = new_histogram();
        for v in [1000u64, 2000, 3000, 4000, 5000] {
            big.record_n(v, 1 << 62).unwrap();
        }
        let e = read(&log_with("overflow", &big, |_| {})).unwrap_err();
        assert!(e.to_string().contains("more than a u64 holds"), "{e:#}");
        // A device is refused before it is read (/dev/zero grew memory by 1 GB/s).
        let e = read(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e:#}");
    }
}
