//! Judging runs against each other: `compare`'s verdicts ([`compare`]), repeat-until-
//! confident ([`repeat`]) and the capacity search ([`capacity`]).
//! May import: `report`, `config`, `stats`, `error` (never `run`: it judges what runs wrote).

pub(crate) mod capacity;
pub(crate) mod compare;
pub(crate) mod repeat;
