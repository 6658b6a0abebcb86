//! The one place that writes report files.

use std::fs::OpenOptions;
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::{bail, Context};

use super::{Format, Report};

/// Appends `report` as a CSV row to `path`, writing the header first when the file is new
/// or empty. Refuses a file whose first line is not a schema-1 header.
pub fn append_csv(path: &Path, report: &Report) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open CSV file {}", path.display()))?;
    let mut first = [0u8; 7];
    let len = file
        .seek(std::io::SeekFrom::End(0))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if len > 0 {
        file.seek(std::io::SeekFrom::Start(0))?;
        let n = file.read(&mut first)?;
        if &first[..n] != b"schema," {
            bail!("{} is not an echo-bench CSV report (its first line does not start with `schema,`); choose another --csv file", path.display());
        }
    }
    file.write_all(&Format::Csv.render(report, len == 0))
        .with_context(|| format!("cannot write CSV file {}", path.display()))
}

/// Writes (replaces) `path` with `bytes`.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Checks, before a run, that `path` can be written (creating it empty if it does not
/// exist, which `append_csv` then treats as new), so a typo does not cost a whole run.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    OpenOptions::new().append(true).create(true).open(path).map(drop)
}
