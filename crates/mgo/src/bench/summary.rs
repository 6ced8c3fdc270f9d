//! What mgo says after the rounds: per benchmark, each level's median
//! time with its 95% interval and its change against the lowest level, a
//! geomean row, and a verdict per level; and which tests the levels
//! disagree about. Pure: text in, text out.

use super::stats::{self, Summary};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One benchmark line's name and time, from go's benchmark format
/// (`BenchmarkName-8  1000  123.4 ns/op  ...`), or `None` for any other
/// line (and for a benchmark line without `ns/op`).
pub fn benchmark_line(line: &str) -> Option<(String, f64)> {
    let mut fields = line.split_whitespace();
    let name = fields.next().filter(|n| n.starts_with("Benchmark"))?;
    fields.next()?.parse::<u64>().ok()?;
    let rest: Vec<&str> = fields.collect();
    let value = rest.chunks(2).find_map(|pair| match pair {
        [value, "ns/op"] => value.parse::<f64>().ok(),
        _ => None,
    })?;
    Some((name.to_owned(), value))
}

/// A benchmark: its package and name.
type Key = (String, String);

/// The times measured, per benchmark and level.
#[derive(Debug, Default)]
pub struct Results {
    /// Each benchmark in the order first seen, and each level's times.
    benchmarks: Vec<(Key, BTreeMap<u8, Vec<f64>>)>,
}

impl Results {
    /// Adds one measurement.
    pub fn add(&mut self, level: u8, package: &str, name: &str, ns_per_op: f64) {
        let key = (package.to_owned(), name.to_owned());
        let at = match self.benchmarks.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                self.benchmarks.push((key, BTreeMap::new()));
                self.benchmarks.len() - 1
            }
        };
        if let Some((_, levels)) = self.benchmarks.get_mut(at) {
            levels.entry(level).or_default().push(ns_per_op);
        }
    }

    /// Whether anything was measured.
    pub fn is_empty(&self) -> bool {
        self.benchmarks.is_empty()
    }
}

/// One level's comparison with the lowest on one benchmark.
struct Change {
    ratio: f64,
    p: f64,
    n: (usize, usize),
}

/// The summary of `results` for `levels` (lowest first): a table, then
/// one verdict line per level above the lowest.
pub fn summary(results: &Results, levels: &[u8]) -> String {
    let Some((&base, others)) = levels.split_first() else {
        return String::new();
    };
    let mut out = String::new();
    let several_packages = results
        .benchmarks
        .iter()
        .any(|((p, _), _)| Some(p) != results.benchmarks.first().map(|((p, _), _)| p));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["sec/op".to_owned()];
    header.extend(levels.iter().map(|l| format!("v{l}")));
    rows.push(header);
    // Per level above the lowest: the ratios for the geomean, and how
    // many benchmarks were compared and found different.
    let mut ratios: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
    let mut counts: BTreeMap<u8, (usize, usize)> = BTreeMap::new();
    let mut centers: BTreeMap<u8, Vec<f64>> = BTreeMap::new();
    for ((package, name), samples) in &results.benchmarks {
        let shown = name.strip_prefix("Benchmark").unwrap_or(name);
        let label = if several_packages {
            format!("{package}.{shown}")
        } else {
            shown.to_owned()
        };
        let mut row = vec![label];
        let base_sample = samples.get(&base);
        let base_summary = base_sample.and_then(|s| stats::summarize(s));
        for &level in levels {
            let Some(sample) = samples.get(&level) else {
                row.push("-".to_owned());
                continue;
            };
            let Some(summary) = stats::summarize(sample) else {
                row.push("-".to_owned());
                continue;
            };
            centers.entry(level).or_default().push(summary.center);
            let mut cell = describe(&summary);
            if level != base
                && let (Some(base_sample), Some(base_summary)) = (base_sample, base_summary)
            {
                let change = Change {
                    ratio: summary.center / base_summary.center,
                    p: stats::u_test(base_sample, sample).unwrap_or(1.0),
                    n: (base_sample.len(), sample.len()),
                };
                let count = counts.entry(level).or_default();
                count.0 += 1;
                if stats::significant(change.p) {
                    count.1 += 1;
                }
                if change.ratio.is_finite() && change.ratio > 0.0 {
                    ratios.entry(level).or_default().push(change.ratio);
                }
                let _ = write!(cell, "  {}", describe_change(&change));
            }
            row.push(cell);
        }
        rows.push(row);
    }
    if results.benchmarks.len() > 1 {
        let mut row = vec!["geomean".to_owned()];
        for &level in levels {
            let mut cell = centers
                .get(&level)
                .and_then(|c| stats::geomean(c))
                .map_or_else(|| "-".to_owned(), time);
            if let Some(ratio) = ratios.get(&level).and_then(|r| stats::geomean(r)) {
                let _ = write!(cell, "  {:+.2}%", (ratio - 1.0) * 100.0);
            }
            row.push(cell);
        }
        rows.push(row);
    }
    let _ = writeln!(
        out,
        "levels compared, against v{base}: median time per op ± 95% confidence interval; change where a Mann-Whitney U test finds one at alpha {} (~: none)",
        stats::ALPHA
    );
    out.push_str(&aligned(&rows));
    for &level in others {
        let (compared, significant) = counts.get(&level).copied().unwrap_or_default();
        let Some(ratio) = ratios.get(&level).and_then(|r| stats::geomean(r)) else {
            continue;
        };
        // The geomean row's change, in words: "faster" is time saved, as
        // benchstat's negative sec/op delta.
        let change = if (ratio - 1.0).abs() < 0.0005 {
            "no change".to_owned()
        } else if ratio < 1.0 {
            format!("{:.1}% faster", (1.0 - ratio) * 100.0)
        } else {
            format!("{:.1}% slower", (ratio - 1.0) * 100.0)
        };
        let noun = if compared == 1 {
            "benchmark"
        } else {
            "benchmarks"
        };
        let _ = writeln!(
            out,
            "v{level}: {change} (geomean), {significant} of {compared} {noun} significant"
        );
    }
    let fewest = results
        .benchmarks
        .iter()
        .flat_map(|(_, samples)| samples.values().map(Vec::len))
        .min()
        .unwrap_or(0);
    let (difference, interval) = (stats::fewest_for_difference(), stats::fewest_for_interval());
    if fewest < interval {
        let _ = writeln!(
            out,
            "note: {fewest} runs per level: a difference can be significant from {difference} on, an interval is bounded from {interval} on (-count)"
        );
    }
    out
}

/// `1.234µs ± 2%`.
fn describe(summary: &Summary) -> String {
    format!("{} ± {}", time(summary.center), summary.range())
}

/// `-20.69% (p=0.002 n=6)`, or `~ (p=0.937 n=6)`; `n=6+5` where the
/// counts differ.
fn describe_change(change: &Change) -> String {
    let delta = if !stats::significant(change.p) {
        "~".to_owned()
    } else {
        format!("{:+.2}%", (change.ratio - 1.0) * 100.0)
    };
    let n = if change.n.0 == change.n.1 {
        change.n.0.to_string()
    } else {
        format!("{}+{}", change.n.0, change.n.1)
    };
    format!("{delta} (p={:.3} n={n})", change.p)
}

/// Nanoseconds in the unit that keeps four digits readable.
fn time(ns: f64) -> String {
    let (value, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let decimals = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    format!("{value:.decimals$}{unit}")
}

/// Rows as columns two spaces apart, the first left-aligned.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            let pad = width.saturating_sub(cell.chars().count());
            let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One line per test that fails at some levels and passes at others:
/// `TestX fails at v3, v4 and passes at v1, v2`. `failed` holds each
/// failure seen, with its level; `levels` are those that ran.
pub fn disagreements(levels: &[u8], failed: &[(u8, String)]) -> Vec<String> {
    let mut tests: Vec<&str> = Vec::new();
    for (_, test) in failed {
        if !tests.contains(&test.as_str()) {
            tests.push(test);
        }
    }
    let list = |levels: Vec<u8>| {
        levels
            .iter()
            .map(|l| format!("v{l}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    tests
        .into_iter()
        .filter_map(|test| {
            let (failing, passing): (Vec<u8>, Vec<u8>) = levels
                .iter()
                .partition(|&&l| failed.iter().any(|(fl, t)| *fl == l && t == test));
            (!passing.is_empty()).then(|| {
                format!(
                    "{test} fails at {} and passes at {}",
                    list(failing),
                    list(passing)
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn benchmark_lines_are_read_and_others_are_not() {
        assert_eq!(
            benchmark_line("BenchmarkPopCount-2   \t     20\t     12345 ns/op\t   0 B/op"),
            Some(("BenchmarkPopCount-2".to_owned(), 12345.0))
        );
        assert_eq!(
            benchmark_line("BenchmarkX/size=8-2 100 1.5 MB/s 7.25 ns/op"),
            Some(("BenchmarkX/size=8-2".to_owned(), 7.25))
        );
        for other in [
            "BenchmarkX",
            "goos: linux",
            "PASS",
            "BenchmarkX-2 20 5 B/op",
            "",
        ] {
            assert_eq!(benchmark_line(other), None, "{other}");
        }
    }

    #[test]
    fn the_summary_names_the_faster_level_and_what_is_not_significant() {
        let mut results = Results::default();
        for (i, (v1, v2)) in [100.0, 103.0, 101.0, 99.0, 104.0, 102.0]
            .into_iter()
            .zip([80.0, 82.0, 79.0, 81.0, 83.0, 78.0])
            .enumerate()
        {
            results.add(1, "p", "BenchmarkFast-2", v1);
            results.add(2, "p", "BenchmarkFast-2", v2);
            results.add(1, "p", "BenchmarkSame-2", 50.0 + i as f64);
            results.add(2, "p", "BenchmarkSame-2", 50.5 + i as f64);
        }
        let text = summary(&results, &[1, 2]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with("sec/op") && lines[1].contains("v2"),
            "{text}"
        );
        // benchstat's numbers for these samples (see stats.rs).
        assert!(
            lines[2].starts_with("Fast-2") && lines[2].contains("101.5ns ± 2%"),
            "{text}"
        );
        assert!(
            lines[2].contains("80.50ns ± 3%  -20.69% (p=0.002 n=6)"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("Same-2") && lines[3].contains("  ~ (p="),
            "{text}"
        );
        assert!(lines[4].starts_with("geomean"), "{text}");
        // (80.5/101.5 * 53/52.5)^(1/2) = 0.8948: 10.5% less time.
        assert!(lines[4].ends_with("-10.52%"), "{text}");
        assert_eq!(
            lines[5],
            "v2: 10.5% faster (geomean), 1 of 2 benchmarks significant"
        );
    }

    #[test]
    fn a_level_within_a_twentieth_of_a_percent_is_no_change() {
        let mut results = Results::default();
        for v in [10.0, 11.0, 12.0, 13.0] {
            results.add(1, "p", "BenchmarkA", v * 1000.0);
            results.add(3, "p", "BenchmarkA", v * 1000.0 + 1.0);
        }
        let text = summary(&results, &[1, 3]);
        assert!(
            text.lines()
                .any(|l| l == "v3: no change (geomean), 0 of 1 benchmark significant"),
            "{text}"
        );
        // Four runs: enough for a difference, too few for an interval.
        assert!(text.contains("note: 4 runs per level"), "{text}");
    }

    #[test]
    fn only_tests_that_some_levels_pass_are_named() {
        let failed = vec![
            (3, "TestFMA".to_owned()),
            (4, "TestFMA".to_owned()),
            (1, "TestBroken".to_owned()),
            (2, "TestBroken".to_owned()),
            (3, "TestBroken".to_owned()),
            (3, "TestFMA".to_owned()),
        ];
        assert_eq!(
            disagreements(&[1, 2, 3], &failed),
            ["TestFMA fails at v3 and passes at v1, v2"]
        );
        assert_eq!(
            disagreements(&[1, 2, 3, 4], &failed),
            [
                "TestFMA fails at v3, v4 and passes at v1, v2",
                "TestBroken fails at v1, v2, v3 and passes at v4"
            ]
        );
    }
}
