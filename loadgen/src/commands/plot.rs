//! `loadgen plot`: charts of a CSV report (throughput and p99 against connections) or the
//! percentile spectrum of an interval log, as SVG.

use crate::cli::PlotArgs;
use crate::error::{flag_error, Error};
use crate::os::files::Dest;
use crate::output::plot;
use crate::output::sink;
use crate::output::sink::check_output;
use crate::report::read::read_report;

/// `loadgen plot`.
pub(super) fn run(a: &PlotArgs) -> anyhow::Result<u8> {
    check_output("--out", &a.out)?;
    let to_stdout = Dest::of(&a.out).is_stdout();
    if !to_stdout && a.out.extension().is_none_or(|e| !e.eq_ignore_ascii_case("svg")) {
        return Err(flag_error(
            "--out",
            a.out.display(),
            "charts are written as SVG: give a .svg file name, or - for standard output",
        )
        .into());
    }
    let is_log = a.input.extension().is_some_and(|e| e == "hlog");
    if is_log {
        let merged = crate::scale::merge::read_log(&a.input)?;
        let title = a
            .title
            .clone()
            .unwrap_or_else(|| format!("Latency by percentile ({})", a.input.display()));
        let mut lines = vec![("latency (from the intended send time in open loop)", &merged.latency)];
        if let Some(raw) = &merged.raw {
            lines.push(("raw service time (from the actual send)", raw));
        }
        sink::write_file(&a.out, plot::spectrum(&title, &lines)?.as_bytes())?;
        if !to_stdout {
            println!("wrote {}", a.out.display());
            time_charts(a, &merged)?;
        }
        return Ok(0);
    }
    let rows = read_report(&a.input)?;
    let size = match a.msg_size {
        Some(s) => s,
        None => rows.iter().find_map(|r| r.num("msg_size")).map_or(64, |v| v as u64),
    };
    let title = a.title.clone().unwrap_or_else(|| format!("{size} B messages"));
    let tput = plot::line_chart(
        &format!("Throughput, {title}"),
        "throughput (msg/s)",
        &plot::series(&rows, "throughput_msgs_s", size),
        false,
    )
    .map_err(|e| Error::Input(format!("{}: {e}", a.input.display())))?;
    let p99 = plot::line_chart(
        &format!("p99 latency, {title}"),
        "p99 latency (µs, log scale)",
        &plot::series(&rows, "lat_p99_us", size),
        true,
    )
    .map_err(|e| Error::Input(format!("{}: {e}", a.input.display())))?;
    sink::write_file(&a.out, tput.as_bytes())?;
    if to_stdout {
        // One SVG document per stream: the p99 chart needs a file of its own.
        eprintln!("wrote the throughput chart to standard output; give --out FILE.svg for the p99 chart too");
        return Ok(0);
    }
    let p99_path = suffixed(&a.out, "-p99");
    sink::write_file(&p99_path, p99.as_bytes())?;
    match load_curve(a, &rows, &title)? {
        Some(curve_path) => println!(
            "wrote {}, {} and {}",
            a.out.display(),
            p99_path.display(),
            curve_path.display()
        ),
        None => println!("wrote {} and {}", a.out.display(), p99_path.display()),
    }
    Ok(0)
}

/// A rate ladder's latency-versus-load curve beside the other charts (`NAME-curve.svg`),
/// with each model's capacity printed; `None` when the report has no ladder.
fn load_curve(
    a: &PlotArgs,
    rows: &[crate::report::read::Row],
    title: &str,
) -> anyhow::Result<Option<std::path::PathBuf>> {
    let curves = plot::curve::curves(rows);
    if curves.is_empty() {
        return Ok(None);
    }
    let objective = plot::curve::objective(rows);
    let chart = plot::curve::curve_chart(
        &format!("p99 latency against achieved throughput, {title}"),
        &curves,
        objective.as_ref().map(|(t, b)| (t.as_str(), *b)),
        true,
    )
    .map_err(|e| Error::Input(format!("{}: {e}", a.input.display())))?;
    let curve_path = suffixed(&a.out, "-curve");
    sink::write_file(&curve_path, chart.as_bytes())?;
    for c in curves.iter().filter(|c| c.capacity.is_some()) {
        println!("capacity of {}", plot::curve::describe_capacity(c));
    }
    Ok(Some(curve_path))
}

/// `dir/name.svg` with `suffix` before the extension.
fn suffixed(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .map_or("plot".into(), |s| s.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map_or("svg".into(), |e| e.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}{suffix}.{ext}"))
}

/// Beside an interval log's spectrum, over time: throughput (and the offered rate of
/// `--stages`) in `NAME-time.svg` and p99 in `NAME-time-p99.svg`, each stage's start marked.
fn time_charts(a: &crate::cli::PlotArgs, merged: &crate::scale::merge::Merged) -> anyhow::Result<()> {
    let name = a
        .input
        .file_stem()
        .map_or("log".into(), |n| n.to_string_lossy().into_owned());
    let t = plot::time::series(&name, merged);
    for (suffix, title, what, series, log_y) in [
        ("-time", "Throughput", "throughput (msg/s)", &t.throughput, false),
        ("-time-p99", "p99", "p99 latency (µs)", &t.p99, true),
    ] {
        let path = suffixed(&a.out, suffix);
        if let Ok(svg) = plot::time::chart(&format!("{title} over time, {name}"), what, series, log_y, &t.marks) {
            sink::write_file(&path, svg.as_bytes())?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
