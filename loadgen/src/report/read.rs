//! Reading schema-1 CSV reports back (for `compare`, `plot`): columns are matched by name,
//! extra columns are fine, and a file that is not a report gets one line naming it.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Error;
use crate::os::files::check_input_file;

/// Columns a report must have to be compared or plotted.
pub const REQUIRED: [&str; 9] = [
    "schema",
    "target",
    "transport",
    "mode",
    "conns",
    "msg_size",
    "depth",
    "rate",
    "throughput_msgs_s",
];

/// One row of a report, by column name.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    fields: HashMap<String, String>,
}

impl Row {
    /// This row with `column` set to `value`.
    pub fn with(mut self, column: &str, value: String) -> Row {
        self.fields.insert(column.to_string(), value);
        self
    }

    /// Builds a row from (column, value) pairs.
    pub fn new<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Row {
            fields: pairs.into_iter().collect(),
        }
    }

    /// A column's text ("" when absent).
    pub fn get(&self, col: &str) -> &str {
        self.fields.get(col).map_or("", String::as_str)
    }

    /// Whether the row has the column at all (an older report may lack it).
    pub fn has(&self, col: &str) -> bool {
        self.fields.contains_key(col)
    }

    /// A column as a number, if it is one: finite and within [`MAX_VALUE`] (a cell beyond
    /// it is not a measurement; [`read_report`] warns of it by name).
    pub fn num(&self, col: &str) -> Option<f64> {
        self.get(col)
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && v.abs() <= MAX_VALUE)
    }
}

/// The largest magnitude a measured value may have (1e15: a count of messages over a
/// year at 30M/s, or 30 years in µs); beyond it a cell is not a measurement.
pub const MAX_VALUE: f64 = 1e15;

/// The largest report read (1 GiB: a 10-hour, million-connection study is a few hundred
/// thousand rows of under 2 KiB).
pub const MAX_REPORT_BYTES: u64 = 1 << 30;

/// Columns that hold text or a setting, not a measurement.
const TEXT_COLUMNS: [&str; 24] = [
    "schema",
    "timestamp",
    "label",
    "target",
    "addr",
    "transport",
    "mode",
    "status",
    "host",
    "kernel",
    "version",
    "engine",
    "shard",
    "steady",
    "pacing",
    "pin_server",
    "pin_client",
    "close",
    "conn_rate",
    "work",
    "arrivals",
    "stage",
    "slo",
    "slo_met",
];

/// Why a cell of a measured column is not a value: `None` when it is one (or empty).
fn bad_cell(col: &str, v: &str) -> Option<&'static str> {
    // Only loadgen's own measured columns are judged: another tool's extra column is its own.
    if v.trim().is_empty() || TEXT_COLUMNS.contains(&col) || !super::csv_row::HEADER.contains(&col) {
        return None;
    }
    match v.trim().parse::<f64>() {
        Err(_) => Some("not a number"),
        Ok(x) if !x.is_finite() => Some("not a finite number"),
        Ok(x) if x.abs() > MAX_VALUE => Some("out of range for a measurement (beyond 1e15)"),
        Ok(_) => None,
    }
}

/// Reads every row of a report.
/// Cells of a measured column that are not finite numbers within [`MAX_VALUE`] are blanked
/// (the row then has no value for that metric) and each is named on stderr: never a
/// silent drop.
pub fn read_report(path: &Path) -> Result<Vec<Row>, Error> {
    let name = path.display();
    check_input_file(path, "a CSV report", MAX_REPORT_BYTES)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .map_err(|e| Error::Input(format!("cannot read report {name}: {}", io_reason(&e))))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::Input(format!("{name} is not a CSV report: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(Error::Input(format!(
            "{name} is empty: no header and no rows (did the run that should have written it fail?)"
        )));
    }
    if header.first().map(String::as_str) != Some("schema") {
        return Err(Error::Input(format!(
            "{name} is not an echo-bench report: its first column is not `schema`"
        )));
    }
    if let Some(dup) = header.iter().enumerate().find(|(i, h)| header[..*i].contains(h)) {
        return Err(Error::Input(format!(
            "{name} has the column `{}` twice: a report names each column once",
            dup.1
        )));
    }
    if let Some(missing) = REQUIRED.iter().find(|c| !header.iter().any(|h| h == *c)) {
        return Err(Error::Input(format!(
            "{name} lacks the column `{missing}`; is it a schema-1 report?"
        )));
    }
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| Error::Input(format!("{name}, row {}: {e}", i + 2)))?;
        let row = Row::new(
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(|v| v.to_string()))
                .map(|(c, v)| match bad_cell(&c, &v) {
                    Some(why) => {
                        bad.push(format!("{name} row {}: {c} = {v}: {why}; row left out of {c}", i + 2));
                        (c, String::new())
                    }
                    None => (c, v),
                }),
        );
        if row.get("schema") != "1" {
            return Err(Error::Input(format!(
                "{name}, row {}: schema {:?} is not supported (expected 1)",
                i + 2,
                row.get("schema")
            )));
        }
        rows.push(row);
    }
    for line in bad.iter().take(20) {
        eprintln!("WARNING: {line}");
    }
    if bad.len() > 20 {
        eprintln!("WARNING: {name}: {} more cells that are not values", bad.len() - 20);
    }
    Ok(rows)
}

fn io_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("read-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn cells_that_are_not_measurements_are_left_out_by_name() {
        let mut text =
            String::from("schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s,lat_p99_us\n");
        for bad in ["NaN", "inf", "-inf", "1e308", "abc"] {
            text.push_str(&format!("1,mio,tcp,closed,10,64,1,,{bad},{bad}\n"));
        }
        text.push_str("1,mio,tcp,closed,10,64,1,,1000,250.5\n");
        let rows = read_report(&write("nan.csv", &text)).unwrap();
        assert_eq!(rows.len(), 6, "no row is dropped whole");
        for r in &rows[..5] {
            assert_eq!((r.num("throughput_msgs_s"), r.num("lat_p99_us")), (None, None));
            assert_eq!(r.get("target"), "mio");
        }
        assert_eq!(rows[5].num("lat_p99_us"), Some(250.5));
        let dup = write(
            "dup.csv",
            "schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s,target\n",
        );
        assert!(read_report(&dup).unwrap_err().to_string().contains("`target` twice"));
        for special in ["/dev/zero", "/dev/null"] {
            let e = read_report(Path::new(special)).unwrap_err().to_string();
            assert!(e.contains("not a regular file"), "{special}: {e}");
        }
    }

    #[test]
    fn reads_by_name_with_extra_columns() {
        let p = write(
            "ok.csv",
            "schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s,extra\n1,mio,tcp,closed,10,64,1,,1000.5,x\n",
        );
        let rows = read_report(&p).unwrap();
        assert_eq!(rows[0].num("throughput_msgs_s"), Some(1000.5));
        assert_eq!(rows[0].get("extra"), "x");
        assert_eq!(rows[0].num("rate"), None);
    }

    #[test]
    fn names_the_file_and_the_problem() {
        let missing = read_report(Path::new("/nonexistent/base.csv")).unwrap_err().to_string();
        assert!(missing.contains("/nonexistent/base.csv"), "{missing}");
        let p = write("notreport.csv", "a,b\n1,2\n");
        assert!(read_report(&p)
            .unwrap_err()
            .to_string()
            .contains("not an echo-bench report"));
        let p = write("empty.csv", "");
        assert!(read_report(&p).unwrap_err().to_string().contains("is empty"));
        let p = write("nocol.csv", "schema,target\n1,mio\n");
        assert!(read_report(&p).unwrap_err().to_string().contains("`transport`"));
    }
}
