//! One measured run, as `run` and `sweep` both make it: in this process, or fanned out to
//! `--procs` shard processes.

/// One measured run of `cfg`: in this process, or fanned out to `--procs` shard processes.
pub(super) fn measure(cfg: &crate::config::RunConfig) -> anyhow::Result<crate::report::Report> {
    if cfg.procs > 1 {
        crate::scale::fanout::run(cfg)
    } else {
        crate::run::run(cfg)
    }
}
