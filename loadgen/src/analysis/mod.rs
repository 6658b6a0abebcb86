//! Judging runs: `compare`'s verdicts ([`compare`]), repeat-until-confident ([`repeat`]),
//! the capacity search ([`capacity`]) and `--slo` objectives on any run ([`objectives`]).
//! May import: `report`, `config`, `stats`, `error` (never `run`: it judges what runs wrote).

pub(crate) mod capacity;
pub(crate) mod compare;
pub(crate) mod objectives;
pub(crate) mod repeat;
