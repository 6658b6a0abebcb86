//! The one place that writes report files.
//!
//! Appending a row to a CSV report never breaks the file, whatever wrote it before:
//! - appends are serialised by an exclusive lock on the file (`flock`), so rows of
//!   concurrent runs (several processes, several hosts on a shared disk) never interleave;
//! - a file whose header lacks some of this version's columns (an older report) is
//!   rewritten atomically (a temporary file renamed over it) under the union of both
//!   headers, old rows padded with empty cells, and a line on stderr says so; the file's
//!   own extra columns are kept, empty in the new row;
//! - a file that is not a report is refused and left untouched;
//! - a row that cannot be written whole (a full disk) is cut back off, and a file this
//!   append created is removed: no half-written row, no empty file.
//!
//! Streams and special files ([`Dest`]: `-`, `/dev/stdout`, a FIFO, `/dev/full`) are
//! written to and never read: the header goes once per process, before the first row.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context;

use super::format::Format;
use crate::error::Error;
use crate::os::files::{self, Dest};
use crate::report::csv_row::{fields, HEADER};
use crate::report::Report;

/// Streams that already have their CSV header (written once per process).
static HEADER_SENT: Mutex<Vec<Dest>> = Mutex::new(Vec::new());

/// Appends `report` as a CSV row to `path` (a file, or a stream: see [`Dest`]).
pub fn append_csv(path: &Path, report: &Report) -> anyhow::Result<()> {
    match Dest::of(path) {
        Dest::File(path) => {
            let existed = path.exists();
            let mut file = open_locked(&path)?;
            let before = file.metadata().map(|m| m.len()).unwrap_or(0);
            let result = append_csv_file(&path, &mut file, report);
            if result.is_err() {
                // Whatever part of a row reached the file is cut back off; a file this
                // append created is removed (under the lock, so no other row is lost).
                if !existed && before == 0 {
                    let _ = std::fs::remove_file(&path);
                } else {
                    let _ = file.set_len(before);
                }
            }
            result
        }
        stream => {
            let mut sent = HEADER_SENT.lock().unwrap_or_else(|e| e.into_inner());
            let first = !sent.contains(&stream);
            stream
                .write_stream(&Format::Csv.render(report, first))
                .context("cannot write the CSV row")?;
            if first {
                sent.push(stream);
            }
            Ok(())
        }
    }
}

/// Appends to a locked regular file: header first when the file is new or empty, the
/// header upgraded when the file's is older. Refuses a file that is not a report.
fn append_csv_file(path: &Path, file: &mut File, report: &Report) -> anyhow::Result<()> {
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("cannot read CSV file {}", path.display()))?;
    let write_err = || format!("cannot write CSV file {}", path.display());
    if text.trim().is_empty() {
        file.set_len(0).with_context(write_err)?;
        file.seek(SeekFrom::Start(0)).with_context(write_err)?;
        return file
            .write_all(&Format::Csv.render(report, true))
            .and_then(|()| file.sync_data())
            .with_context(write_err);
    }
    let header = report_header(path, &text)?;
    let missing: Vec<&str> = HEADER
        .iter()
        .copied()
        .filter(|c| !header.iter().any(|h| h == c))
        .collect();
    let mut columns = header.clone();
    columns.extend(missing.iter().map(|c| c.to_string()));
    let row = row_under(&columns, report);
    if missing.is_empty() {
        if !text.ends_with('\n') {
            file.write_all(b"\n").with_context(write_err)?; // a file cut short: keep rows apart
        }
        return file
            .write_all(&row)
            .and_then(|()| file.sync_data())
            .with_context(write_err);
    }
    rewrite(path, &text, &columns, &row)?;
    eprintln!(
        "note: {} had an older header; added the column(s) {} (empty in its {} earlier row(s))",
        path.display(),
        missing.join(", "),
        text.lines().count().saturating_sub(1)
    );
    Ok(())
    // `file` (and with it the lock) is released here, after the rename.
}

/// Opens `path` (created if absent) and takes its exclusive lock. If another process
/// replaced the file while this one waited (an atomic header upgrade), the new file is
/// opened and locked instead, so no row goes to an unlinked file.
fn open_locked(path: &Path) -> anyhow::Result<File> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .with_context(|| format!("cannot open CSV file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock CSV file {}", path.display()))?;
        let same = match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            return Ok(file);
        }
    }
}

/// The header of an existing report, or an error naming the file when it is not one.
fn report_header(path: &Path, text: &str) -> Result<Vec<String>, Error> {
    let not_report = || {
        Error::Input(format!(
            "{} is not an echo-bench CSV report (its first line does not start with `schema,`); choose another --csv file",
            path.display()
        ))
    };
    if !text.starts_with("schema,") {
        return Err(not_report());
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let header = reader.headers().map_err(|_| not_report())?;
    Ok(header.iter().map(str::to_string).collect())
}

/// The report's row laid out under `columns` (matched by name; unknown columns empty).
fn row_under(columns: &[String], report: &Report) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in report.csv_rows() {
        let values = fields(r);
        let cells = columns
            .iter()
            .map(|c| HEADER.iter().position(|h| h == c).map_or("", |i| values[i].as_str()));
        // Writing to a Vec cannot fail.
        let _ = w.write_record(cells);
    }
    w.into_inner().unwrap_or_default()
}

/// Replaces `path` with `columns` as its header, every old row padded to it, then `row`;
/// written to a temporary file beside it and renamed over it (atomic: a reader sees the old
/// file or the new one, never a mix).
fn rewrite(path: &Path, old: &str, columns: &[String], row: &[u8]) -> anyhow::Result<()> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let bad_row = |e: csv::Error| Error::Input(format!("{}: a row cannot be read: {e}", path.display()));
    out.write_record(columns).map_err(bad_row)?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(old.as_bytes());
    for rec in reader.records() {
        let rec = rec.map_err(bad_row)?;
        let padded = (0..columns.len()).map(|i| rec.get(i).unwrap_or(""));
        out.write_record(padded).map_err(bad_row)?;
    }
    let mut bytes = out.into_inner().unwrap_or_default();
    bytes.extend_from_slice(row);
    files::replace_file(path, &bytes)
        .with_context(|| format!("cannot rewrite CSV file {} with the upgraded header", path.display()))
}

/// Writes `bytes` as the whole output `path` (a regular file is replaced atomically).
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Dest::of(path).replace(bytes)
}

/// Checks, before any work, that the output `path` given with `flag` can be written
/// (creating nothing), and for `--csv` that an existing regular file is a report.
pub fn check_output(flag: &'static str, path: &Path) -> anyhow::Result<()> {
    let dest = Dest::of(path);
    dest.check(flag)?;
    let Dest::File(path) = dest else { return Ok(()) };
    let mut first = String::new();
    if let Ok(f) = File::open(&path) {
        // A regular file's first line, read with a bound. Unreadable (write-only) or not
        // UTF-8: left to the append to report.
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(f.take(64 * 1024)), &mut first);
    }
    let first = first.trim();
    if first.is_empty() {
        return Ok(());
    }
    // --json and --hdr-log replace a file: only one of their own kind, never a report or
    // anything else that would be lost without a word.
    let (kind, own) = match flag {
        "--csv" => return report_header(&path, first).map(drop).map_err(Into::into),
        "--json" => ("a JSON summary", first.starts_with('\u{7b}')),
        "--hdr-log" => ("an interval log", first.starts_with("#[")),
        _ => return Ok(()),
    };
    if own {
        return Ok(());
    }
    Err(crate::error::flag_error(
        flag,
        path.display(),
        format!("holds something other than {kind}, which this would replace: give a new file, or remove it first"),
    )
    .into())
}

/// What an output path names, for telling whether two outputs are one file: the device
/// and inode of an existing regular file (symlinks followed), else the absolute path as it
/// will be created; `None` for stdout and for devices and FIFOs, which outputs may share.
fn identity(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if Dest::of(path).is_stdout() {
        return None; // a stream each output writes whole, in turn (`--csv - --hdr-log -`)
    }
    if let Ok(m) = std::fs::metadata(path) {
        // A device or a FIFO is a sink several outputs may share (`/dev/null`, `/dev/full`).
        return m.is_file().then(|| format!("inode {}:{}", m.dev(), m.ino()));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    Some(format!(
        "path {}",
        dir.join(path.file_name().unwrap_or_default()).display()
    ))
}

/// Refuses, before anything is created or touched, two outputs that are one file (the
/// later one would replace or garble the earlier's): exit 2 naming both flags.
pub fn check_distinct(outputs: &[(&'static str, &Path)]) -> Result<(), crate::error::Error> {
    let ids: Vec<Option<String>> = outputs.iter().map(|(_, p)| identity(p)).collect();
    for (i, id) in ids.iter().enumerate() {
        if let Some(j) = ids[..i].iter().position(|other| id.is_some() && other == id) {
            let (a, b) = (outputs[j], outputs[i]);
            return Err(crate::error::Error::Input(format!(
                "{} {} and {} {} are the same file: each output needs its own path",
                a.0,
                a.1.display(),
                b.0,
                b.1.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    #[test]
    fn two_outputs_on_one_file_are_refused() {
        let a = temp("same.csv", "schema\n");
        let link = a.with_file_name("link.json");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let fresh = a.with_file_name("fresh.hlog");
        let e = check_distinct(&[("--csv", &a), ("--json", &link)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--csv") && e.contains("--json") && e.contains("same file"),
            "{e}"
        );
        let dotted = a.parent().unwrap().join(".").join("fresh.hlog");
        let e = check_distinct(&[("--json", &fresh), ("--hdr-log", &dotted)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hdr-log"), "{e}");
        assert!(check_distinct(&[("--csv", &a), ("--hdr-log", &fresh)]).is_ok());
        let (null, dash) = (Path::new("/dev/null"), Path::new("-"));
        assert!(check_distinct(&[("--csv", null), ("--json", null), ("--hdr-log", dash), ("--json", dash)]).is_ok());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "schema\n", "nothing touched");
    }

    fn temp(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn report(label: &str) -> Report {
        let mut r = Report::empty("mio", "127.0.0.1:1", None);
        r.label = label.into();
        r.status = Status::Ok;
        r
    }

    fn read(p: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
        let mut r = csv::Reader::from_path(p).unwrap(); // not flexible: every row as wide as the header
        let h = r.headers().unwrap().iter().map(String::from).collect();
        (h, r.records().map(Result::unwrap).collect())
    }

    #[test]
    fn an_older_header_is_upgraded_and_old_rows_padded() {
        let old: Vec<&str> = HEADER[..HEADER.len() - 2].to_vec();
        let old_row = vec!["1"; old.len()].join(",");
        let p = temp("old.csv", &format!("{}\n{old_row}\n", old.join(",")));
        append_csv(&p, &report("new")).unwrap();
        let (h, rows) = read(&p);
        assert_eq!(h, HEADER.to_vec());
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][HEADER.len() - 1], "", "old row padded");
        assert_eq!(&rows[1][2], "new");
        append_csv(&p, &report("again")).unwrap(); // now current: a plain append
        assert_eq!(read(&p).1.len(), 3);
    }

    #[test]
    fn extra_unknown_columns_are_kept() {
        let mut cols: Vec<&str> = HEADER.to_vec();
        cols.insert(3, "my_note");
        let p = temp("extra.csv", &format!("{}\n", cols.join(",")));
        append_csv(&p, &report("x")).unwrap();
        let (h, rows) = read(&p);
        assert_eq!(h.len(), HEADER.len() + 1);
        assert_eq!((&rows[0][2], &rows[0][3], &rows[0][4]), ("x", "", "mio"));
    }

    #[test]
    fn a_file_that_is_not_a_report_is_refused_untouched() {
        let p = temp("notes.csv", "a,b\n1,2\n");
        let err = append_csv(&p, &report("x")).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("notes.csv"), "{err}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n1,2\n");
        assert!(check_output("--csv", &p).is_err());
        assert!(check_output("--csv", &temp("fresh.csv", "")).is_ok());
    }

    #[test]
    fn concurrent_appends_neither_interleave_nor_get_lost() {
        let old: Vec<&str> = HEADER[..HEADER.len() - 5].to_vec();
        let p = temp("race.csv", &format!("{}\n", old.join(",")));
        std::thread::scope(|s| {
            for t in 0..4 {
                let p = &p;
                s.spawn(move || {
                    for i in 0..25 {
                        append_csv(p, &report(&format!("t{t}-{i}"))).unwrap();
                    }
                });
            }
        });
        let (h, rows) = read(&p);
        assert_eq!(h, HEADER.to_vec());
        let mut labels: Vec<String> = rows.iter().map(|r| r[2].to_string()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), 100, "every row once");
    }
}
