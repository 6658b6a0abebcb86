//! Reading schema-1 CSV reports back (for `compare`, `plot`): columns are matched by name,
//! extra columns are fine, and a file that is not a report gets one line naming it.

use std::collections::HashMap;
use std::path::Path;

use crate::error::Error;

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

    /// A column as a number, if it is one.
    pub fn num(&self, col: &str) -> Option<f64> {
        self.get(col).trim().parse().ok()
    }
}

/// Reads every row of a report.
pub fn read_report(path: &Path) -> Result<Vec<Row>, Error> {
    let name = path.display();
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
    if let Some(missing) = REQUIRED.iter().find(|c| !header.iter().any(|h| h == *c)) {
        return Err(Error::Input(format!(
            "{name} lacks the column `{missing}`; is it a schema-1 report?"
        )));
    }
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| Error::Input(format!("{name}, row {}: {e}", i + 2)))?;
        let row = Row::new(header.iter().cloned().zip(rec.iter().map(str::to_string)));
        if row.get("schema") != "1" {
            return Err(Error::Input(format!(
                "{name}, row {}: schema {:?} is not supported (expected 1)",
                i + 2,
                row.get("schema")
            )));
        }
        rows.push(row);
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
