//! How the runs of one configuration ended (the `status` column), counted per side, so a
//! comparison can say, and a gate can fail, when the new runs ended worse than the base's:
//! a run with errors may still be fast, and a failed run measured nothing.

use serde::Serialize;

use crate::report::read::Row;

/// The runs of one side of one configuration, by how they ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Runs that ended `ok`.
    pub ok: usize,
    /// Runs that ended with `errors`.
    pub errors: usize,
    /// Open-loop runs that did not offer their rate (`behind`).
    pub behind: usize,
    /// Runs stopped early (`partial`).
    pub partial: usize,
    /// Runs that measured nothing (`failed`); their figures are left out of the comparison.
    pub failed: usize,
}

impl Tally {
    /// Counts `rows` by their `status` (a report without the column counts every run ok;
    /// an unknown word counts as errors).
    pub fn of(rows: &[&Row]) -> Tally {
        let mut t = Tally::default();
        for r in rows {
            match r.get("status") {
                "" | "ok" => t.ok += 1,
                "partial" => t.partial += 1,
                "behind" => t.behind += 1,
                "failed" => t.failed += 1,
                _ => t.errors += 1,
            }
        }
        t
    }

    /// Runs counted.
    pub fn runs(&self) -> usize {
        self.ok + self.behind + self.errors + self.partial + self.failed
    }

    /// The share of runs that did not end `ok`.
    fn not_ok_share(&self) -> f64 {
        (self.runs() - self.ok) as f64 / self.runs().max(1) as f64
    }

    /// Whether these (new) runs ended worse than `base`'s: a larger share not `ok`.
    pub fn worse_than(&self, base: &Tally) -> bool {
        self.not_ok_share() > base.not_ok_share()
    }

    /// "2 of 3 runs not ok (errors 1, failed 1)" or "all 3 runs ok".
    pub fn describe(&self) -> String {
        let not_ok = self.runs() - self.ok;
        if not_ok == 0 {
            return format!("all {} run(s) ok", self.runs());
        }
        let parts: Vec<String> = [
            ("behind", self.behind),
            ("errors", self.errors),
            ("partial", self.partial),
            ("failed", self.failed),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(w, n)| format!("{w} {n}"))
        .collect();
        format!("{not_ok} of {} run(s) not ok ({})", self.runs(), parts.join(", "))
    }
}

/// Whether a row's figures count: a failed run measured nothing.
pub fn measured(row: &Row) -> bool {
    row.get("status") != "failed"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(statuses: &[&str]) -> Vec<Row> {
        statuses
            .iter()
            .map(|s| Row::new([("status".to_string(), s.to_string())]))
            .collect()
    }

    #[test]
    fn counts_and_orders_how_runs_ended() {
        let (base, new) = (rows(&["ok", "ok", "ok"]), rows(&["ok", "errors", "failed"]));
        let (tb, tn) = (
            Tally::of(&base.iter().collect::<Vec<_>>()),
            Tally::of(&new.iter().collect::<Vec<_>>()),
        );
        assert_eq!(
            tn,
            Tally {
                ok: 1,
                behind: 0,
                errors: 1,
                partial: 0,
                failed: 1
            }
        );
        assert!(tn.worse_than(&tb) && !tb.worse_than(&tn));
        assert_eq!(tn.describe(), "2 of 3 run(s) not ok (errors 1, failed 1)");
        assert_eq!(tb.describe(), "all 3 run(s) ok");
        // The same share not ok on both sides is not worse; a report without the column is ok.
        let half = rows(&["ok", "partial"]);
        let t = Tally::of(&half.iter().collect::<Vec<_>>());
        assert!(!t.worse_than(&t));
        assert_eq!(Tally::of(&rows(&[""]).iter().collect::<Vec<_>>()).ok, 1);
        assert!(!measured(&rows(&["failed"])[0]) && measured(&rows(&["errors"])[0]));
    }
}
