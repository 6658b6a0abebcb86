//! Charts: series from reports, SVG output.
use super::*;

fn row(target: &str, conns: u32, tput: f64) -> Row {
    let (target, transport) = target.split_once(' ').unwrap_or((target, "tcp"));
    Row::new(
        [
            ("target", target),
            ("transport", transport),
            ("conns", &conns.to_string()),
            ("msg_size", "64"),
            ("depth", "1"),
            ("rate", ""),
            ("throughput_msgs_s", &tput.to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

#[test]
fn series_average_repeats() {
    let rows = [
        row("mio", 10, 100.0),
        row("mio", 10, 200.0),
        row("mio", 1, 50.0),
        row("tokio", 10, 80.0),
        row("mio udp", 10, 70.0),
    ];
    let mut s = series(&rows, "throughput_msgs_s", 64);
    // Two runs, sd 70.7: the 95% half-width is t(0.975, 1) x sd / sqrt(2) = 12.706 x 50.
    let ci = s[0].1[1].ci95;
    assert!((ci - 12.706 * 50.0).abs() < 0.1, "{ci}");
    s[0].1[1].ci95 = 635.0;
    let pt = |x, y, ci95, n| Point { x, y, ci95, n };
    assert_eq!(
        s,
        vec![
            (
                "mio".to_string(),
                vec![pt(1.0, 50.0, 0.0, 1), pt(10.0, 150.0, 635.0, 2)]
            ),
            ("mio udp".to_string(), vec![pt(10.0, 70.0, 0.0, 1)]),
            ("tokio".to_string(), vec![pt(10.0, 80.0, 0.0, 1)])
        ]
    );
    // Repeats draw error bars and say so.
    let svg = line_chart("t", "y", &s, false).unwrap();
    assert!(svg.contains("95% confidence interval"), "the caption names the bars");
    // A failed run's zero is no point.
    let failed = Row::new(
        [
            ("status", "failed"),
            ("target", "mio"),
            ("conns", "1"),
            ("msg_size", "64"),
            ("throughput_msgs_s", "0"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let with_failed = series(&[row("mio", 1, 50.0), failed], "throughput_msgs_s", 64);
    assert_eq!(with_failed[0].1, vec![pt(1.0, 50.0, 0.0, 1)]);
}

#[test]
fn charts_are_svg_with_labels() {
    let rows = [row("mio", 1, 50.0), row("mio", 100, 500.0), row("tokio", 1, 40.0)];
    let svg = line_chart("Throughput", "msg/s", &series(&rows, "throughput_msgs_s", 64), false).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in ["Throughput", "mio", "tokio", "connections"] {
        assert!(svg.contains(text), "missing {text}");
    }
    let mut h = crate::measure::record::new_histogram();
    for v in 1..10_000u64 {
        h.record(v * 1000).unwrap();
    }
    let svg = spectrum("Latency", &[("latency", &h)]).unwrap();
    assert!(svg.contains("<svg") && svg.contains("99.9%"));
    assert!(line_chart("x", "y", &[], false).is_err());
}
