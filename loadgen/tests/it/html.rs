//! `loadgen report --html` in a real browser: the page renders in headless Chromium with
//! its charts and table, without console errors, without fetching anything, and its
//! screenshot is not blank. Without Chromium the test fails under CI (`.ci/run` installs
//! it) and says it skipped elsewhere.

use std::path::Path;
use std::process::Command;

use crate::common::{self, *};

/// Runs headless Chromium on `page` with `extra` arguments; (stdout, stderr).
pub(crate) fn chromium(page: &Path, extra: &[&str]) -> Option<(String, String)> {
    let profile = temp_path("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&profile);
    Some((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A small study: a two-model sweep and the interval log of one run.
fn study() -> (std::path::PathBuf, std::path::PathBuf) {
    let csv = temp_path("study.csv");
    let hlog = temp_path("study.hlog");
    let out = run(&[
        "sweep",
        "--targets",
        "mio,tokio",
        "--conns",
        "1,4",
        "--repeat",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(&[
        "--target",
        "mio",
        "-c",
        "4",
        "-R",
        "2k",
        "-d",
        "1s",
        "--warmup",
        "100ms",
        "--interval",
        "200ms",
        "-q",
        "--hdr-log",
        hlog.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    (csv, hlog)
}

#[test]
fn the_html_report_renders_in_a_real_browser_offline_and_not_blank() {
    let _machine = common::shared();
    if Command::new("chromium").arg("--version").output().is_err() {
        return testkit::skip(
            "the_html_report_renders_in_a_real_browser_offline_and_not_blank",
            "no chromium (apt-get install chromium)",
        );
    }
    let (csv, hlog) = study();
    let page = temp_path("study.html");
    let out = run(&[
        "report",
        csv.to_str().unwrap(),
        "--hlog",
        hlog.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    // Nothing is fetched: no external script, style, image or link; the only URL is the
    // SVG namespace, which is a name, not a request.
    for bad in ["<script src", "<link", "<img", "<iframe", "url(", "@import"] {
        assert!(!html.contains(bad), "the page must not fetch anything: {bad}");
    }
    let urls = html.matches("http").count();
    assert_eq!(
        urls,
        html.matches("http://www.w3.org/2000/svg").count(),
        "every URL is the SVG namespace"
    );

    let (dom, log) = chromium(&page, &["--dump-dom"]).unwrap();
    assert!(dom.matches("<svg").count() >= 3, "at least three charts in the DOM");
    assert!(
        dom.contains("<table class=\"sortable\""),
        "the comparison table in the DOM"
    );
    assert!(dom.contains("<title>mio: 4 connections"), "tooltips on the points");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "no console messages: {console:?}");
    assert!(!log.contains("Uncaught"), "{log}");

    let png = temp_path("study.png");
    chromium(
        &page,
        &["--window-size=1280,1600", &format!("--screenshot={}", png.display())],
    )
    .unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let inked = pixels
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 200))
        .count();
    let share = inked as f64 / (pixels.len() / channels) as f64;
    assert!(
        share > 0.01,
        "the screenshot is not blank: {:.3}% of pixels drawn",
        share * 100.0
    );
}

#[test]
fn bad_inputs_are_named_and_an_empty_report_makes_a_page_that_says_so() {
    let _machine = common::shared();
    let not_report = temp_path("not-report.csv");
    std::fs::write(&not_report, "a,b\n1,2\n").unwrap();
    let out = run(&[
        "report",
        not_report.to_str().unwrap(),
        "--html",
        temp_path("x.html").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-report.csv"));
    let empty = temp_path("empty.csv");
    std::fs::write(
        &empty,
        "schema,target,transport,mode,conns,msg_size,depth,rate,throughput_msgs_s\n",
    )
    .unwrap();
    let bad_log = temp_path("bad.hlog");
    std::fs::write(&bad_log, "hello\n").unwrap();
    let out = run(&[
        "report",
        empty.to_str().unwrap(),
        "--hlog",
        bad_log.to_str().unwrap(),
        "--html",
        temp_path("y.html").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.hlog"));
    let out = run(&["report", empty.to_str().unwrap(), "--html", "/no/such/dir/z.html"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--html"));
    let page = temp_path("empty.html");
    let out = run(&["report", empty.to_str().unwrap(), "--html", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&page).unwrap().contains("hold no rows"));
}

/// Measures a page's chart panels in the browser: (panels, panels whose legend box
/// overlaps their plot, most series in one panel). The page gets a script that writes the
/// figures into `data-layout` on its body, read back from the dumped DOM.
fn layout(page: &Path) -> (usize, usize, usize) {
    const PROBE: &str = "<script>(function(){var f=document.querySelectorAll('figure.panel'),bad=0,most=0;\
f.forEach(function(p){var s=p.querySelector('svg').getBoundingClientRect(),l=p.querySelector('ul.legend').getBoundingClientRect();\
most=Math.max(most,p.querySelectorAll('ul.legend li').length);\
if(!(l.right<=s.left||l.left>=s.right||l.bottom<=s.top||l.top>=s.bottom))bad++;});\
document.body.setAttribute('data-layout',f.length+' '+bad+' '+most);})();</script>";
    let probed = temp_path(&format!("probed-{}", page.file_name().unwrap().to_string_lossy()));
    let html = std::fs::read_to_string(page)
        .unwrap()
        .replace("</body>", &format!("{PROBE}</body>"));
    std::fs::write(&probed, html).unwrap();
    let (dom, _) = chromium(&probed, &["--window-size=1280,900", "--dump-dom"]).unwrap();
    let at = dom.find("data-layout=\"").expect("the probe ran") + "data-layout=\"".len();
    let v: Vec<usize> = dom[at..]
        .split('"')
        .next()
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    (v[0], v[1], v[2])
}

#[test]
fn chart_panels_keep_their_legends_beside_the_plot_and_few_lines_each() {
    let _machine = common::shared();
    if Command::new("chromium").arg("--version").output().is_err() {
        return testkit::skip(
            "chart_panels_keep_their_legends_beside_the_plot_and_few_lines_each",
            "no chromium (apt-get install chromium)",
        );
    }
    // A small work study: two kinds of work make two panels per metric.
    let csv = temp_path("panels.csv");
    let _ = std::fs::remove_file(&csv);
    let out = run(&[
        "sweep",
        "--targets",
        "mio,threadpool",
        "--conns",
        "1,4",
        "--work",
        "none;wait:200us",
        "--duration",
        "300ms",
        "--warmup",
        "100ms",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let page = temp_path("panels.html");
    let out = run(&["report", csv.to_str().unwrap(), "--html", page.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let (panels, overlapping, most) = layout(&page);
    assert!(panels >= 4, "a panel per work and metric: {panels}");
    assert_eq!(overlapping, 0, "no legend over a plot");
    assert!(most <= 8, "at most 8 series in a panel: {most}");
    // The committed work study's page, as published.
    let published = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../results/work/report.html"));
    let (panels, overlapping, most) = layout(published);
    assert!(panels >= 4, "results/work/report.html has panels: {panels}");
    assert_eq!(overlapping, 0, "results/work/report.html: no legend over a plot");
    assert!(
        most <= 8,
        "results/work/report.html: at most 8 series a panel, got {most}"
    );
}

#[test]
fn a_page_with_a_baseline_opens_with_the_gate_verdict_draws_both_and_agrees_with_the_cli() {
    let _machine = common::shared();
    let (base, new) = (temp_path("verdict-base.csv"), temp_path("verdict-new.csv"));
    for (csv, conns) in [(&base, "4"), (&base, "4"), (&new, "4"), (&new, "4")] {
        let out = run(&[
            "--target",
            "mio",
            "-c",
            conns,
            "-d",
            "400ms",
            "--warmup",
            "100ms",
            "-q",
            "--csv",
            csv.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
    }
    let page = temp_path("verdict.html");
    let out = run(&[
        "report",
        new.to_str().unwrap(),
        "--baseline",
        base.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    let verdict = html
        .find("<b>Verdict: the gate")
        .expect("the page has the gate's verdict");
    assert!(
        verdict < html.find("<svg").expect("charts"),
        "the verdict comes before the charts"
    );
    assert!(
        html.contains("mio (baseline verdict-base.csv)"),
        "the baseline's runs are drawn"
    );
    // The CLI, with its defaults, prints the same throughput interval as the page.
    let cli = run(&["compare", base.to_str().unwrap(), new.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&cli.stdout);
    let line = text
        .lines()
        .find(|l| l.contains(" throughput "))
        .expect("a throughput row");
    let interval = &line[line.find('[').unwrap()..=line.find(']').unwrap()];
    assert!(html.contains(interval), "the CLI's {interval} is on the page");
}
