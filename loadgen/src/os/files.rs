//! Where an output goes: standard output (`-`, `/dev/stdout`), standard error
//! (`/dev/stderr`), a special file (character device or FIFO: written to, never read,
//! never replaced), or a regular file (replaced atomically: a temporary file beside it,
//! renamed over it, so a full disk leaves the old file or none, never half of a new one).
//!
//! Every output flag (`--csv`, `--json`, `--hdr-log`, `plot --out`) goes through [`Dest`];
//! [`Dest::check`] refuses, before any run, a path that cannot take an output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::error::{flag_error, Error};

/// An output's destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dest {
    /// Standard output (`-` or `/dev/stdout`).
    Stdout,
    /// Standard error (`/dev/stderr`).
    Stderr,
    /// A character device, FIFO or socket: opened for writing only.
    Special(PathBuf),
    /// A regular file (existing or not).
    File(PathBuf),
}

impl Dest {
    /// Classifies `path`.
    pub fn of(path: &Path) -> Dest {
        match path.to_str() {
            Some("-" | "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1") => return Dest::Stdout,
            Some("/dev/stderr" | "/dev/fd/2" | "/proc/self/fd/2") => return Dest::Stderr,
            _ => {}
        }
        match std::fs::metadata(path) {
            Ok(m) if m.file_type().is_char_device() || m.file_type().is_fifo() || m.file_type().is_socket() => {
                Dest::Special(path.to_path_buf())
            }
            _ => Dest::File(path.to_path_buf()),
        }
    }

    /// Whether this output is standard output (the human summary then goes to stderr).
    pub fn is_stdout(&self) -> bool {
        *self == Dest::Stdout
    }

    /// The name to put in messages.
    pub fn name(&self) -> String {
        match self {
            Dest::Stdout => "standard output".into(),
            Dest::Stderr => "standard error".into(),
            Dest::Special(p) | Dest::File(p) => p.display().to_string(),
        }
    }

    /// Checks, before any work, that this destination can take an output given with `flag`:
    /// not a directory; an existing file writable; a new file creatable (a file beside it
    /// tried, then removed: permission bits do not stop root, but /proc or a read-only
    /// mount do, and only trying tells). Leaves nothing behind.
    pub fn check(&self, flag: &'static str) -> Result<(), Error> {
        let path = match self {
            Dest::Stdout | Dest::Stderr => return Ok(()),
            Dest::Special(p) | Dest::File(p) => p,
        };
        let refuse = |why: String| flag_error(flag, path.display(), why);
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => Err(refuse("is a directory; give a file name inside it".into())),
            Ok(m) if m.file_type().is_socket() => Err(refuse(
                "is a socket, which cannot be opened as a file; give a file or a FIFO".into(),
            )),
            Ok(_) => writable(path).map_err(|e| refuse(format!("cannot write it: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                // The probe has a name of this process's own: shards started together
                // that append to one report each check it, and must not trip on each
                // other's probe (EEXIST) or remove the file another just created.
                let probe = path.with_file_name(format!(
                    ".{}.{}.probe",
                    path.file_name().map_or("output".into(), |n| n.to_string_lossy()),
                    std::process::id()
                ));
                match std::fs::metadata(dir) {
                    Ok(m) if m.is_dir() => OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&probe)
                        .and_then(|_| std::fs::remove_file(&probe))
                        .map_err(|e| refuse(format!("cannot create it in {}: {e}", dir.display()))),
                    _ => Err(refuse(format!("its directory {} does not exist", dir.display()))),
                }
            }
            Err(e) => Err(refuse(format!("cannot use it: {e}"))),
        }
    }

    /// Writes `bytes` as the whole output: a regular file is replaced atomically (nothing
    /// is left behind when it fails); a stream or special file is written to.
    pub fn replace(&self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Dest::File(path) => replace_file(path, bytes),
            _ => self.write_stream(bytes),
        }
    }

    /// Writes `bytes` to a stream or special file (never read, never truncated).
    pub fn write_stream(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let context = || format!("cannot write {}", self.name());
        match self {
            Dest::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush()).with_context(context)
            }
            Dest::Stderr => std::io::stderr().lock().write_all(bytes).with_context(context),
            Dest::Special(path) => open_special(path)
                .and_then(|mut f| f.write_all(bytes))
                .with_context(context),
            Dest::File(path) => OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(bytes))
                .with_context(context),
        }
    }
}

/// How long an output waits for a FIFO's reader to appear, or to read again when the
/// pipe is full, before it gives up (the output fails; the run does not hang).
pub const SPECIAL_PATIENCE: Duration = Duration::from_secs(5);

/// A special file opened for writing without ever blocking for good: a FIFO with no reader
/// is waited for at most [`SPECIAL_PATIENCE`] (opening it plainly would block until one
/// came, whatever the run or a signal said), and so is a reader that stops reading.
pub struct Special {
    file: File,
    path: PathBuf,
}

/// Opens a character device, FIFO or socket for writing (see [`Special`]).
pub fn open_special(path: &Path) -> std::io::Result<Special> {
    let deadline = Instant::now() + SPECIAL_PATIENCE;
    loop {
        match OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path) {
            Ok(file) => {
                return Ok(Special {
                    file,
                    path: path.to_path_buf(),
                })
            }
            // ENXIO: a FIFO that nobody reads yet: wait a little for its reader. (A socket
            // file gives ENXIO too, for good: it is said at once.)
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) && !is_fifo(path) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!(
                        "{} is a socket: it cannot be opened as a file (give a file or a FIFO)",
                        path.display()
                    ),
                ));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                if Instant::now() >= deadline || crate::os::signals::interrupted() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "nothing reads the FIFO {} (waited {} s); start its reader first",
                            path.display(),
                            SPECIAL_PATIENCE.as_secs()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_fifo(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

impl Write for Special {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let deadline = Instant::now() + SPECIAL_PATIENCE;
        loop {
            match self.file.write(buf) {
                // The pipe is full: wait (bounded) for the reader to make room.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!(
                                "the reader of {} stopped reading for {} s",
                                self.path.display(),
                                SPECIAL_PATIENCE.as_secs()
                            ),
                        ));
                    }
                    let mut fds = [rustix::event::PollFd::new(&self.file, rustix::event::PollFlags::OUT)];
                    let timeout = rustix::event::Timespec::try_from(left).ok();
                    match rustix::event::poll(&mut fds, timeout.as_ref()) {
                        // A signal: look at the deadline and try again.
                        Ok(_) | Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `access(W_OK)`: whether this process may write `path` (as root, files without write
/// permission are writable; read-only mounts are not).
fn writable(path: &Path) -> std::io::Result<()> {
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).map_err(std::io::Error::from)
}

/// Replaces `path` with `bytes` through a temporary file beside it, synced, then renamed;
/// on failure the temporary file is removed and `path` is left as it was.
pub fn replace_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name().map_or("output".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let result = File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Refuses what is not a report file before reading it: a device, a FIFO or a socket (a
/// read could block forever or never end), and a file over `max_bytes`.
pub fn check_input_file(path: &Path, what: &str, max_bytes: u64) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let name = path.display();
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // the open that follows names the real reason
    };
    let t = meta.file_type();
    if t.is_char_device() || t.is_block_device() || t.is_fifo() || t.is_socket() {
        return Err(Error::Input(format!(
            "{name} is not a regular file (a device, FIFO or socket): give {what} as a file"
        )));
    }
    if meta.len() > max_bytes {
        return Err(Error::Input(format!(
            "{name} is {} bytes, over the {} bytes a {what} may have",
            meta.len(),
            max_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_without_a_reader_or_with_a_stalled_one_fails_in_bounded_time() {
        let dir = std::env::temp_dir().join(format!("dest-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("out.fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let started = Instant::now();
        let e = open_special(&fifo).err().expect("no reader: no open");
        let waited = started.elapsed();
        assert!(e.to_string().contains("nothing reads the FIFO"), "{e}");
        assert!(
            waited >= SPECIAL_PATIENCE && waited < SPECIAL_PATIENCE * 3,
            "{waited:?}"
        );
        // A reader that opens the FIFO and never reads: the pipe fills, the write gives up.
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut w = open_special(&fifo).unwrap();
        let e = w.write_all(&vec![b'x'; 4 << 20]).unwrap_err();
        assert!(e.to_string().contains("stopped reading"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn classifies_streams_devices_and_files() {
        assert_eq!(Dest::of(Path::new("-")), Dest::Stdout);
        assert_eq!(Dest::of(Path::new("/dev/stdout")), Dest::Stdout);
        assert_eq!(Dest::of(Path::new("/dev/stderr")), Dest::Stderr);
        assert_eq!(Dest::of(Path::new("/dev/full")), Dest::Special("/dev/full".into()));
        assert_eq!(Dest::of(Path::new("x.csv")), Dest::File("x.csv".into()));
    }

    #[test]
    fn check_refuses_directories_and_missing_directories_and_creates_nothing() {
        let dir = std::env::temp_dir().join(format!("dest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = Dest::of(&dir).check("--json").unwrap_err().to_string();
        assert!(e.starts_with("--json") && e.contains("is a directory"), "{e}");
        let e = Dest::of(&dir.join("no/such/x.csv"))
            .check("--csv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        let fresh = dir.join("fresh.csv");
        Dest::of(&fresh).check("--csv").unwrap();
        assert!(!fresh.exists(), "check creates nothing");
        Dest::of(&fresh).replace(b"a\n").unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"a\n");
        let e = Dest::of(Path::new("/dev/full")).replace(b"x").unwrap_err();
        assert!(format!("{e:#}").contains("No space left"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
