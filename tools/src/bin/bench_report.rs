//! Turns criterion's saved estimates into a Markdown table and an SVG chart.
//!
//! ```text
//! CARGO_TARGET_DIR=target-bench cargo bench            # or: --bench peers
//! CARGO_TARGET_DIR=target-bench cargo run --release -p cogen-tools --bin bench_report
//! ```
//!
//! It walks `$CARGO_TARGET_DIR/criterion` (default `target/criterion` at the
//! repository's root, or the directory given as the first argument) for
//! every benchmark that has a `new/estimates.json`, so every group of every
//! bench in `benches/` shows up without being listed here. Groups declared
//! in `benches/*.rs` (`benchmark_group("...")`) that have no saved estimates
//! are listed as "not run". For each benchmark it prints the median time per
//! iteration (and per element when the group declares a throughput) and the
//! ratio to the group's `cogen` id (or `cogen_stackful` when there is no
//! `cogen`).
//!
//! Writes `docs/bench.md` (the table) and `docs/bench.svg` (one bar chart
//! panel per group, log scale when a group's times differ by more than 20×).
//! When `tools/scripts/count_all.sh` has written `op_counts.json` beside
//! the criterion directory, the table also shows each id's instructions and
//! simulated branch mispredictions per operation, and the chart each bar's
//! instructions per operation above its time.
//!
//! With no saved estimates at all it says so and writes nothing. The table
//! names the criterion directory only relative to the repository (or not at
//! all), never by an absolute path of the machine it ran on.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

#[path = "../goals.rs"]
mod goals;

use goals::{GOALS, Measure};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One benchmark's saved result.
#[derive(Debug, Clone)]
struct Bench {
    group: String,
    id: String,
    /// Median time per iteration, in nanoseconds.
    median_ns: f64,
    /// 95% confidence interval of the median, in nanoseconds.
    ci_ns: (f64, f64),
    /// Elements per iteration, when the group declared `Throughput::Elements`.
    elements: Option<u64>,
    /// When criterion wrote the estimates.
    saved: SystemTime,
}

impl Bench {
    /// The time the table and the chart show: per element if the group
    /// declared a throughput, else per iteration.
    fn per_op_ns(&self) -> f64 {
        match self.elements {
            Some(n) if n > 0 => self.median_ns / n as f64,
            _ => self.median_ns,
        }
    }
}

const USAGE: &str = "\
usage: bench_report [CRITERION_DIR]

Reads criterion's saved estimates from CRITERION_DIR (default:
$CARGO_TARGET_DIR/criterion, else target/criterion at the repository's root)
and writes docs/bench.md and docs/bench.svg. Run `cargo bench` first.";

fn main() -> ExitCode {
    let arg = std::env::args_os().nth(1);
    if arg.as_ref().is_some_and(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    match run(arg.map(PathBuf::from)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository's root: `benches/` is read from it, `docs/` written to it.
fn repository_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tools/ lives in the repository's root")
}

fn run(criterion_dir: Option<PathBuf>) -> Result<()> {
    let root = repository_root();
    let criterion_dir = match criterion_dir {
        Some(dir) => dir,
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("criterion"),
    };
    let criterion_dir = if criterion_dir.is_relative() {
        std::env::current_dir()?.join(criterion_dir)
    } else {
        criterion_dir
    };
    let source = source_note(&criterion_dir, root);

    if !criterion_dir.is_dir() {
        return Err(format!(
            "no criterion results: {} does not exist.\n\
             Run `cargo bench` first (with the same CARGO_TARGET_DIR), or pass \
             the criterion directory as the first argument. Nothing written.",
            criterion_dir.display()
        )
        .into());
    }
    let mut benches = Vec::new();
    collect(&criterion_dir, &mut benches)?;
    if benches.is_empty() {
        return Err(format!(
            "no saved estimates (new/estimates.json) under {}.\n\
             Run `cargo bench` first. Nothing written.",
            criterion_dir.display()
        )
        .into());
    }

    // Group -> benchmarks, in a stable order: groups by name, ids by time.
    let mut groups: BTreeMap<String, Vec<Bench>> = BTreeMap::new();
    for b in benches {
        groups.entry(b.group.clone()).or_default().push(b);
    }
    for list in groups.values_mut() {
        list.sort_by(|a, b| a.per_op_ns().total_cmp(&b.per_op_ns()));
    }
    let declared = declared_groups(&root.join("benches"));
    let not_run: Vec<&String> = declared
        .iter()
        .filter(|(g, _)| !groups.contains_key(*g))
        .map(|(g, _)| g)
        .collect();

    // The count script's instructions per operation, when it has run with
    // the same target directory.
    let counts = criterion_dir
        .parent()
        .map(|target| read_counts(&target.join("op_counts.json")))
        .unwrap_or_default();
    let markdown = table(&groups, &declared, &not_run, &source, &counts);
    print!("{markdown}");

    let docs = root.join("docs");
    fs::create_dir_all(&docs)?;
    fs::write(docs.join("bench.md"), &markdown)?;
    chart(&groups, &counts, &docs.join("bench.svg"))?;
    eprintln!("wrote docs/bench.md and docs/bench.svg");
    Ok(())
}

/// Where the table says the medians come from: the criterion directory
/// relative to the repository when it is inside it, else nothing, so that no
/// absolute path of this machine ends up in a committed file.
fn source_note(dir: &Path, root: &Path) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let dir_abs = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    match dir_abs.strip_prefix(&root) {
        Ok(rel) => format!("criterion medians from `{}`", rel.display()),
        Err(_) => "criterion medians".to_string(),
    }
}

/// Finds every `<...>/new/estimates.json` below `dir` (criterion's layout is
/// `<group>/<id>/new/`, with more levels for parameterised ids).
fn collect(dir: &Path, out: &mut Vec<Bench>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let estimates = path.join("estimates.json");
            let benchmark = path.join("benchmark.json");
            if estimates.is_file() && benchmark.is_file() {
                match read_bench(&benchmark, &estimates) {
                    Ok(b) => out.push(b),
                    Err(e) => eprintln!("skipping {}: {e}", path.display()),
                }
            }
        } else if path
            .file_name()
            .is_some_and(|n| n != "report" && n != "base")
        {
            collect(&path, out)?;
        }
    }
    Ok(())
}

fn read_bench(benchmark: &Path, estimates: &Path) -> Result<Bench> {
    let meta: Value = serde_json::from_str(&fs::read_to_string(benchmark)?)?;
    let est: Value = serde_json::from_str(&fs::read_to_string(estimates)?)?;
    let group = meta["group_id"]
        .as_str()
        .ok_or("benchmark.json has no group_id")?
        .to_string();
    let id = match (meta["function_id"].as_str(), meta["value_str"].as_str()) {
        (Some(f), Some(v)) => format!("{f}/{v}"),
        (Some(f), None) => f.to_string(),
        (None, Some(v)) => v.to_string(),
        (None, None) => group.clone(),
    };
    let median = &est["median"];
    let median_ns = median["point_estimate"]
        .as_f64()
        .ok_or("estimates.json has no median")?;
    let ci = &median["confidence_interval"];
    let ci_ns = (
        ci["lower_bound"].as_f64().unwrap_or(median_ns),
        ci["upper_bound"].as_f64().unwrap_or(median_ns),
    );
    let elements = meta["throughput"]["Elements"].as_u64();
    let saved = fs::metadata(estimates)?.modified()?;
    Ok(Bench {
        group,
        id,
        median_ns,
        ci_ns,
        elements,
        saved,
    })
}

/// `benchmark_group("name")` calls in `benches/*.rs`, and in the files they
/// include with `#[path = "..."]`: group -> bench target (file stem).
fn declared_groups(benches: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(benches) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rs") {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            scan_groups(&path, &stem, 0, &mut out);
        }
    }
    out
}

fn scan_groups(path: &Path, stem: &str, depth: u32, out: &mut BTreeMap<String, String>) {
    let Ok(src) = fs::read_to_string(path) else {
        return;
    };
    // Literal group names only: `benchmark_group("x")` or a helper `group(c, "x")`.
    for pattern in ["benchmark_group(\"", "group(c, \""] {
        for (i, _) in src.match_indices(pattern) {
            let rest = &src[i + pattern.len()..];
            if let Some(end) = rest.find('"') {
                out.insert(rest[..end].to_string(), stem.to_string());
            }
        }
    }
    if depth < 4 {
        for (i, _) in src.match_indices("#[path = \"") {
            let rest = &src[i + "#[path = \"".len()..];
            if let (Some(end), Some(dir)) = (rest.find('"'), path.parent()) {
                scan_groups(&dir.join(&rest[..end]), stem, depth + 1, out);
            }
        }
    }
}

/// The goals section: each goal with its measured ratio, met or not met.
fn goals(groups: &BTreeMap<String, Vec<Bench>>, counts: &Counts) -> String {
    let value = |measure: Measure, g: &str, id: &str| match measure {
        Measure::Time => groups
            .get(g)
            .and_then(|l| l.iter().find(|b| b.id == id))
            .map(Bench::per_op_ns),
        Measure::Instructions => counts.get(&(g.to_string(), id.to_string())).map(|c| c.0),
    };
    let mut s = String::from("\n| goal | measured | |\n|---|---:|---|\n");
    for goal in GOALS {
        let text = goal.text();
        let a = value(goal.measure, goal.group, goal.a);
        let b = goal
            .b
            .iter()
            .filter_map(|id| value(goal.measure, goal.group, id))
            .min_by(f64::total_cmp);
        let (measured, met) = match (a, b) {
            (Some(a), _) if goal.b.is_empty() => (format!("{a:.1}"), a <= goal.limit),
            (Some(a), Some(b)) => {
                let r = goal.ratio(a, b);
                (goal.fmt_ratio(r), goal.met(r))
            }
            _ => {
                s.push_str(&format!("| {text} | not measured | |\n"));
                continue;
            }
        };
        let verdict = if met { "met" } else { "**not met**" };
        s.push_str(&format!("| {text} | {measured} | {verdict} |\n"));
    }
    s
}

/// The id a group's ratios are taken against.
fn baseline(list: &[Bench]) -> Option<&Bench> {
    list.iter()
        .find(|b| b.id == "cogen")
        .or_else(|| list.iter().find(|b| b.id == "cogen_stackful"))
}

fn fmt_time(ns: f64) -> String {
    if ns < 1.0 {
        format!("{:.0} ps", ns * 1e3)
    } else if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Instructions and simulated branch mispredictions per operation, and the
/// operation's name, by (group, id).
type Counts = BTreeMap<(String, String), (f64, f64, String)>;

/// Reads `op_counts.json` as `tools/scripts/count_all.sh` writes it; empty
/// when there is none.
fn read_counts(path: &Path) -> Counts {
    let Some(json) = fs::read_to_string(path)
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
    else {
        return Counts::new();
    };
    let ids = json["ids"].as_array().map_or(&[][..], Vec::as_slice);
    ids.iter()
        .filter_map(|e| {
            let key = (
                e["group"].as_str()?.to_string(),
                e["id"].as_str()?.to_string(),
            );
            let op = e["op"].as_str()?.to_string();
            Some((
                key,
                (
                    e["instructions_per_op"].as_f64()?,
                    e["mispredicts_per_op"].as_f64()?,
                    op,
                ),
            ))
        })
        .collect()
}

fn table(
    groups: &BTreeMap<String, Vec<Bench>>,
    declared: &BTreeMap<String, String>,
    not_run: &[&String],
    source: &str,
    counts: &Counts,
) -> String {
    let mut s = String::new();
    let newest = groups.values().flatten().map(|b| b.saved).max();
    s.push_str(&format!(
        "Measured on {}, {} ({source}).\n\n",
        cpu_model(),
        newest.map_or_else(|| "never".to_string(), date),
    ));
    s.push_str(
        "Time is the median per iteration (per element when the group declares a \
         throughput); ratio is the id's time over the group's `cogen` (or \
         `cogen_stackful`) time: above 1× is slower than cogen, below is faster.\n\n",
    );
    if counts.is_empty() {
        s.push_str("| bench | group | id | median | 95% CI | ratio to cogen |\n");
        s.push_str("|---|---|---|---:|---|---:|\n");
    } else {
        s.push_str(
            "Instructions and (simulated) branch mispredictions per operation are \
             callgrind's, from `tools/scripts/count_all.sh` (`op_counts.json`).\n\n",
        );
        s.push_str("| bench | group | id | median | 95% CI | ratio to cogen | instructions | mispredictions |\n");
        s.push_str("|---|---|---|---:|---|---:|---:|---:|\n");
    }
    let mut ordered: Vec<(&String, &Vec<Bench>)> = groups.iter().collect();
    ordered.sort_by_key(|(g, _)| (declared.get(*g).map_or("~", String::as_str), g.as_str()));
    for (group, list) in ordered {
        let base = baseline(list).map(Bench::per_op_ns);
        let file = declared.get(group).map_or("?", String::as_str);
        for b in list {
            let scale = b.per_op_ns() / b.median_ns;
            let per = if b.elements.is_some() { " /elem" } else { "" };
            let ratio = base.map_or_else(|| "–".to_string(), |x| fmt_ratio(b.per_op_ns() / x));
            let id = if b.id.starts_with("cogen") {
                format!("**{}**", b.id)
            } else {
                b.id.clone()
            };
            s.push_str(&format!(
                "| {file} | {group} | {id} | {}{per} | {} – {} | {ratio} |",
                fmt_time(b.per_op_ns()),
                fmt_time(b.ci_ns.0 * scale),
                fmt_time(b.ci_ns.1 * scale),
            ));
            if !counts.is_empty() {
                match counts.get(&(group.clone(), b.id.clone())) {
                    Some((ir, mis, op)) => {
                        s.push_str(&format!(" {} /{op} | {mis:.2} /{op} |", fmt_count(*ir)))
                    }
                    None => s.push_str(" – | – |"),
                }
            }
            s.push('\n');
        }
    }
    s.push_str(&goals(groups, counts));
    if !not_run.is_empty() {
        s.push_str("\nDeclared but not run (no saved estimates): ");
        let names: Vec<String> = not_run.iter().map(|g| format!("`{g}`")).collect();
        s.push_str(&names.join(", "));
        s.push_str(".\n");
    }
    s
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "an unknown CPU".to_string())
}

/// `YYYY-MM-DD` (UTC) of a timestamp.
fn date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Howard Hinnant's civil_from_days.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// An instruction count per operation: one decimal under 100, whole above.
fn fmt_count(ir: f64) -> String {
    let digits = if ir < 100.0 { 1 } else { 0 };
    format!("{ir:.digits$}")
}

fn chart(groups: &BTreeMap<String, Vec<Bench>>, counts: &Counts, path: &Path) -> Result<()> {
    const COLS: usize = 2;
    const PANEL_W: u32 = 760;
    const PANEL_H: u32 = 360;
    let rows = groups.len().div_ceil(COLS);
    let cols = groups.len().min(COLS);
    let root = SVGBackend::new(path, (PANEL_W * cols as u32, PANEL_H * rows as u32 + 40))
        .into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        &format!(
            "cogen benchmarks — median per op{}, {} ({})",
            if counts.is_empty() {
                ""
            } else {
                " and callgrind instructions per op"
            },
            cpu_model(),
            groups
                .values()
                .flatten()
                .map(|b| b.saved)
                .max()
                .map_or_else(String::new, date)
        ),
        ("sans-serif", 20),
    )?;
    let panels = body.split_evenly((rows, cols));
    for ((group, list), area) in groups.iter().zip(panels.iter()) {
        panel(group, list, counts, area)?;
    }
    root.present()?;
    Ok(())
}

fn label_style() -> TextStyle<'static> {
    TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom))
}

fn panel(
    group: &str,
    list: &[Bench],
    counts: &Counts,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
) -> Result<()> {
    let times: Vec<f64> = list.iter().map(Bench::per_op_ns).collect();
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    let per = if list.iter().any(|b| b.elements.is_some()) {
        "time per element"
    } else {
        "time per iteration"
    };
    let n = list.len();
    let base = baseline(list).map(Bench::per_op_ns);
    let label = |i: usize| -> String {
        let b = &list[i];
        match base {
            Some(x) => format!(
                "{} ({})",
                fmt_time(b.per_op_ns()),
                fmt_ratio(b.per_op_ns() / x)
            ),
            None => fmt_time(b.per_op_ns()),
        }
    };
    // The second line above a bar: its instructions per operation, when
    // counted.
    let instructions = |i: usize| -> Option<String> {
        let b = &list[i];
        let (ir, _, _) = counts.get(&(group.to_string(), b.id.clone()))?;
        Some(format!("{} instr", fmt_count(*ir)))
    };
    let color = |b: &Bench| {
        if b.id.starts_with("cogen") {
            RGBColor(31, 119, 180)
        } else {
            RGBColor(150, 150, 150)
        }
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(group, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(75);
    let ids: Vec<String> = list.iter().map(|b| b.id.clone()).collect();
    let x_fmt = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
            ids.get(*i).cloned().unwrap_or_default()
        }
        SegmentValue::Last => String::new(),
    };

    if max / min.max(f64::MIN_POSITIVE) > 20.0 {
        let lo = min / 2.0;
        let hi = max * 4.0;
        // One line of text higher on a log axis: about 14 of the plot's
        // 270 pixels, whatever the panel's range.
        let line = (hi / lo).powf(14.0 / 270.0);
        let mut chart = builder.build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            (lo..hi).log_scale(),
        )?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&x_fmt)
            .y_desc(format!("{per} (log)"))
            .y_label_formatter(&|v| fmt_time(*v))
            .draw()?;
        for (i, b) in list.iter().enumerate() {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), lo),
                    (SegmentValue::Exact(i + 1), b.per_op_ns()),
                ],
                color(b).filled(),
            );
            bar.set_margin(0, 0, 12, 12);
            chart.draw_series(std::iter::once(bar))?;
            chart.draw_series(std::iter::once(Text::new(
                label(i),
                (SegmentValue::CenterOf(i), b.per_op_ns() * 1.3),
                label_style(),
            )))?;
            if let Some(text) = instructions(i) {
                chart.draw_series(std::iter::once(Text::new(
                    text,
                    (SegmentValue::CenterOf(i), b.per_op_ns() * 1.3 * line),
                    label_style(),
                )))?;
            }
        }
    } else {
        let hi = max * 1.25;
        let mut chart =
            builder.build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..hi)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&x_fmt)
            .y_desc(per)
            .y_label_formatter(&|v| fmt_time(*v))
            .draw()?;
        for (i, b) in list.iter().enumerate() {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), b.per_op_ns()),
                ],
                color(b).filled(),
            );
            bar.set_margin(0, 0, 12, 12);
            chart.draw_series(std::iter::once(bar))?;
            chart.draw_series(std::iter::once(Text::new(
                label(i),
                (SegmentValue::CenterOf(i), b.per_op_ns() + hi * 0.01),
                label_style(),
            )))?;
            if let Some(text) = instructions(i) {
                chart.draw_series(std::iter::once(Text::new(
                    text,
                    (SegmentValue::CenterOf(i), b.per_op_ns() + hi * 0.06),
                    label_style(),
                )))?;
            }
        }
    }
    Ok(())
}
