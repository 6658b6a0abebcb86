//! Configuration keys: which rows are repeats of one configuration (the key columns, a
//! model's default workers keyed as `default`), what keys share, and what kept a row
//! apart from the baseline it should have been compared with.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::read::Row;

/// Columns that identify a configuration: what was loaded and every setting that changes
/// what is measured. Rows are repeats of one configuration only when all of these agree.
pub const KEY_COLUMNS: [&str; 22] = [
    "target",
    "transport",
    "mode",
    "conns",
    "msg_size",
    "depth",
    "rate",
    "engine",
    "client_threads",
    "server_workers",
    "pacing",
    "pin_server",
    "pin_client",
    "sock_buf",
    "server_procs",
    "close",
    "reconnect_every",
    "conn_rate",
    "msgs_per_conn",
    "work",
    "arrivals",
    "stage",
];

/// A configuration: (column, value) for the key columns both sides have, in
/// [`KEY_COLUMNS`] order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key(pub Vec<(&'static str, String)>);

/// What a row's `server_workers` stands for in its key: `default` when the value is what
/// loadgen chooses for the row's model when `--server-workers` is not given (1 loop, ring
/// or runtime thread; a pool worker per connection; none for thread-per-conn), else the
/// number. Models are compared at their own defaults: keyed on the resolved count, a pool
/// of 1000 workers and one mio loop would never pair.
pub fn workers_key(row: &Row) -> String {
    let value = row.get("server_workers");
    let Ok(model) = row.get("target").parse::<servers::Model>() else {
        return value.to_string();
    };
    let conns = row.num("conns").map_or(0, |c| c as usize);
    let procs = row.num("server_procs").map_or(1, |p| p.max(1.0) as u32);
    let default = match model {
        // The budget caps loadgen's choice on the machine that ran it, which may differ.
        servers::Model::ThreadPool => {
            let uncapped = if procs > 1 {
                conns * 6 / (5 * procs as usize) + 16
            } else {
                conns
            };
            vec![crate::config::pool_workers(conns, procs) as usize, uncapped.max(1)]
        }
        m => m.default_workers().into_iter().collect(),
    };
    let is_default = match value.parse::<usize>() {
        Ok(w) => default.contains(&w),
        Err(_) => value.is_empty() && default.is_empty(),
    };
    if is_default {
        "default".to_string()
    } else {
        value.to_string()
    }
}

impl Key {
    /// The key of a row over `columns` (`server_workers` as [`workers_key`]).
    pub fn of(row: &Row, columns: &[&'static str]) -> Key {
        Key(columns
            .iter()
            .map(|&c| match c {
                "server_workers" => (c, workers_key(row)),
                _ => (c, row.get(c).to_string()),
            })
            .collect())
    }

    /// `target=mio conns=100 ...`: the non-empty values, leaving out those in `common`
    /// (printed once above a table).
    pub fn describe(&self, common: &[(&'static str, String)]) -> String {
        self.0
            .iter()
            .filter(|(c, v)| !v.is_empty() && !common.iter().any(|(cc, cv)| cc == c && cv == v))
            .map(|(c, v)| format!("{c}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The (column, value) pairs every key of `keys` shares (empty values left out): said
/// once, not on every line. With a single key nothing is common (its line says it all).
pub fn common<'a>(keys: impl IntoIterator<Item = &'a Key>) -> Vec<(&'static str, String)> {
    let keys: Vec<&Key> = keys.into_iter().collect();
    let Some(first) = keys.first() else { return Vec::new() };
    if keys.len() < 2 {
        return Vec::new();
    }
    first
        .0
        .iter()
        .filter(|(c, v)| !v.is_empty() && keys.iter().all(|k| k.0.iter().any(|(kc, kv)| kc == c && kv == v)))
        .cloned()
        .collect()
}

/// The key columns present in every one of `reports` (leaving out `skip`), and the key
/// columns some of them lack (an older file): those cannot tell configurations apart, and
/// the comparison says so instead of pairing rows silently.
pub fn key_columns(reports: &[&[Row]], skip: Option<&str>) -> (Vec<&'static str>, Vec<&'static str>) {
    let has = |rows: &[Row], c: &str| rows.iter().any(|r| r.has(c));
    let (present, missing): (Vec<&'static str>, Vec<&'static str>) = KEY_COLUMNS
        .iter()
        .filter(|&&c| Some(c) != skip)
        .partition(|&&c| reports.iter().all(|rows| has(rows, c)));
    let lacking = missing
        .into_iter()
        .filter(|&c| reports.iter().any(|rows| has(rows, c)))
        .collect();
    (present, lacking)
}

pub(super) fn group<'a>(rows: &'a [Row], columns: &[&'static str]) -> BTreeMap<Key, Vec<&'a Row>> {
    let mut groups: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        groups.entry(Key::of(r, columns)).or_default().push(r);
    }
    groups
}

/// Rows of one `--by` value that had no baseline to be compared with: the configuration,
/// and the key columns that kept it apart from the nearest configuration the baseline ran.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    /// The `--by` value.
    pub value: String,
    /// Its configuration.
    pub key: Key,
    /// `column=its value (baseline: the nearest baseline configuration's)`, or why none.
    pub apart: String,
}

impl LeftOut {
    /// `by=value config: apart`.
    pub fn describe(&self, by: &str) -> String {
        format!("{by}={} {}: {}", self.value, self.key.describe(&[]), self.apart)
    }
}

/// What kept `key` apart from the nearest of `baseline_keys`: the columns that differ.
pub(super) fn apart(key: &Key, baseline_keys: &[&Key], baseline: &str) -> String {
    let differ = |b: &Key| -> Vec<String> {
        key.0
            .iter()
            .zip(&b.0)
            .filter(|(x, y)| x.1 != y.1)
            .map(|(x, y)| {
                let show = |v: &str| {
                    if v.is_empty() {
                        "(empty)".to_string()
                    } else {
                        v.to_string()
                    }
                };
                format!("{}={} ({baseline}: {})", x.0, show(&x.1), show(&y.1))
            })
            .collect()
    };
    match baseline_keys.iter().map(|b| differ(b)).min_by_key(Vec::len) {
        Some(d) => format!(
            "no {baseline} run with the same configuration; kept apart by {}",
            d.join(", ")
        ),
        None => format!("no {baseline} run at all"),
    }
}
