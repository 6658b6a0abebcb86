//! Whether two reports come from the same kind of setup: the manifest columns that differ;
//! and which runs were disturbed by other processes on their machine or by its hypervisor.

use crate::report::read::Row;
use crate::report::MachineUse;

/// The manifest columns compared between the two sides of a comparison.
pub const ENVIRONMENT_COLUMNS: [&str; 4] = ["host", "kernel", "cpus", "version"];

/// How the environments of two reports differ: for each manifest column whose values differ,
/// (column, base values, new values). Empty when both come from the same kind of setup.
pub fn environment_differences(base: &[Row], new: &[Row]) -> Vec<(String, String, String)> {
    let values = |rows: &[Row], col: &str| {
        let mut v: Vec<String> = rows
            .iter()
            .map(|r| r.get(col).to_string())
            .filter(|v| !v.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v.join("/")
    };
    ENVIRONMENT_COLUMNS
        .iter()
        .filter_map(|&col| {
            let (b, n) = (values(base, col), values(new, col));
            (b != n && !b.is_empty() && !n.is_empty()).then(|| (col.to_string(), b, n))
        })
        .collect()
}

/// Runs among `rows` that were disturbed: other processes took more than a tenth of the
/// machine's CPU in the window, or the hypervisor more than a twentieth (`others_cpu_s`,
/// `steal_cpu_s` against `cpus` times `duration_s`; rows without them are not counted).
pub fn disturbed(rows: &[Row]) -> usize {
    let num = |r: &Row, col: &str| r.get(col).parse::<f64>().ok();
    rows.iter()
        .filter(|r| {
            let capacity = num(r, "cpus").unwrap_or(0.0) * num(r, "duration_s").unwrap_or(0.0);
            let steal = num(r, "steal_cpu_s").unwrap_or(0.0);
            MachineUse::disturbs(num(r, "others_cpu_s"), steal, capacity)
        })
        .count()
}

/// The note a comparison prints when runs were disturbed (`sides`: each side's name and
/// rows), `None` when none was.
pub fn disturbed_note(sides: &[(&str, &[Row])]) -> Option<String> {
    let counts: Vec<(usize, usize)> = sides.iter().map(|(_, rows)| (disturbed(rows), rows.len())).collect();
    if counts.iter().all(|(d, _)| *d == 0) {
        return None;
    }
    let each: Vec<String> = sides
        .iter()
        .zip(&counts)
        .map(|((name, _), (d, n))| format!("{name}{d} of {n}").trim_start().to_string())
        .collect();
    Some(format!(
        "disturbed runs: {} ran beside other processes that took over {:.0}% of the machine's CPU, or steal over {:.0}% (others_cpu_s, steal_cpu_s): differences below may be theirs, not the code's",
        each.join(", "),
        MachineUse::OTHERS_DISTURB * 100.0,
        MachineUse::STEAL_DISTURB * 100.0
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(others: &str, steal: &str) -> Row {
        Row::new(
            [
                ("cpus", "2"),
                ("duration_s", "2.0"),
                ("others_cpu_s", others),
                ("steal_cpu_s", steal),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn runs_beside_busy_neighbours_are_counted_and_said() {
        // Capacity 4 CPU-seconds: others 0.5 (12.5%) or steal 0.3 (7.5%) disturb; 0.3
        // others, empty columns (an older report) do not.
        let base = vec![row("0.100", "0.000"), row("0.300", "0.000"), row("", "")];
        let new = vec![row("0.500", "0.000"), row("0.000", "0.300"), row("0.010", "0.010")];
        assert_eq!(disturbed(&base), 0);
        assert_eq!(disturbed(&new), 2);
        let note = disturbed_note(&[("base ", &base), ("new ", &new)]).unwrap();
        assert!(
            note.starts_with("disturbed runs: base 0 of 3, new 2 of 3 ran beside"),
            "{note}"
        );
        assert!(disturbed_note(&[("base ", &base)]).is_none());
        let one = disturbed_note(&[("", &new)]).unwrap();
        assert!(one.starts_with("disturbed runs: 2 of 3 ran"), "{one}");
    }
}
