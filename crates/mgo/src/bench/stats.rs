//! The statistics benchstat (golang.org/x/perf) applies to benchmark
//! samples, so that mgo's summary and `benchstat -col goamd64` agree:
//!
//! - a sample's center is its median, with a 95% confidence interval
//!   bounded by two order statistics chosen from the binomial distribution
//!   (exact up to 30 values, its normal approximation above);
//! - two samples differ when a two-sided Mann-Whitney U test gives
//!   p <= 0.05: the exact distribution of U (up to 50 values a side, or 25
//!   with ties), else the normal approximation with tie and continuity
//!   corrections;
//! - levels are summed up by the geometric mean of the per-benchmark
//!   ratios of medians.
//!
//! No crate does this: statrs and its kin have the distributions but
//! neither the order-statistic interval nor an exact U test with ties, and
//! benchstat's choices (which bounds, which limits, ties counted as half)
//! are what the numbers must follow. The unit tests compare every function
//! with numbers the real benchstat printed for fixed inputs.

/// The confidence level of every interval.
pub const CONFIDENCE: f64 = 0.95;

/// The significance level of every comparison.
pub const ALPHA: f64 = 0.05;

/// A sample's median and its confidence interval; a bound the sample is
/// too small to give is infinite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The median.
    pub center: f64,
    /// The interval's lower bound, or negative infinity.
    pub lo: f64,
    /// The interval's upper bound, or positive infinity.
    pub hi: f64,
}

impl Summary {
    /// The interval as benchstat prints it after `±`: the larger distance
    /// from the median, in whole percent; `∞` when a bound is infinite.
    pub fn range(&self) -> String {
        if self.lo.is_infinite() || self.hi.is_infinite() {
            return "∞".to_owned();
        }
        let sign = |x: f64| x.partial_cmp(&0.0);
        if sign(self.lo) != sign(self.center) || sign(self.hi) != sign(self.center) {
            return "?".to_owned();
        }
        if self.center == 0.0 {
            return "0%".to_owned();
        }
        let spread = (self.hi / self.center - 1.0).max(1.0 - self.lo / self.center);
        format!("{:.0}%", 100.0 * spread)
    }
}

/// The median of `values` and its 95% confidence interval, or `None` for
/// no values.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let center = median(&sorted)?;
    let (lo_order, hi_order) = median_orders(sorted.len(), CONFIDENCE);
    // Orders are 1-based; 0 and n+1 stand for the infinities beyond the
    // sample.
    let lo = lo_order
        .checked_sub(1)
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or(f64::NEG_INFINITY);
    let hi = hi_order
        .checked_sub(1)
        .and_then(|i| sorted.get(i))
        .copied()
        .unwrap_or(f64::INFINITY);
    Some(Summary { center, lo, hi })
}

/// The median of sorted values: the middle one, or the mean of the two
/// middle ones (benchstat's quantile estimator, R8, gives exactly this at
/// one half).
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    let upper = *sorted.get(n / 2)?;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = *sorted.get(n / 2 - 1)?;
    Some(lower + 0.5 * (upper - lower))
}

/// Up to this sample size the interval comes from the binomial
/// distribution itself, above from its normal approximation (benchstat's
/// limit).
const EXACT_INTERVAL_LIMIT: usize = 30;

/// The order statistics (1-based; 0 and n+1 mean unbounded) that bound the
/// median of `n` values with at least `confidence`. The number of values
/// below the population median is binomial(n, 1/2); the interval grows
/// from its mode outward, each step taking the likelier neighbour (the
/// left one on a tie), until it holds `confidence`.
fn median_orders(n: usize, confidence: f64) -> (usize, usize) {
    if n <= EXACT_INTERVAL_LIMIT {
        let pmf = |k: i64| -> f64 {
            match usize::try_from(k) {
                Ok(k) if k <= n => binomial_half(n, k),
                _ => 0.0,
            }
        };
        let n = n as i64;
        // The lower of the two modes when there are two.
        let mode = (n + 2) / 2 - 1;
        let mut total = pmf(mode);
        let (mut l, mut r) = (mode, mode + 1);
        let (mut lp, mut rp) = (pmf(l - 1), pmf(r));
        while total < confidence && (lp > 0.0 || rp > 0.0) {
            if lp >= rp {
                total += lp;
                l -= 1;
                lp = pmf(l - 1);
            } else {
                total += rp;
                r += 1;
                rp = pmf(r);
            }
        }
        let l = usize::try_from(l.max(0)).unwrap_or(0);
        let r = usize::try_from(r.min(n + 1)).unwrap_or(0);
        return (l, r);
    }
    // The normal approximation with a continuity correction: the central
    // band holding `confidence`, rounded out to whole counts.
    let mu = n as f64 / 2.0;
    let sigma = (n as f64 / 4.0).sqrt();
    let l1 = mu + sigma * normal_quantile((1.0 - confidence) / 2.0);
    let r1 = 2.0 * mu - l1;
    let mut l = ((l1 - 0.5).floor() + 0.5).floor() as i64 + 1;
    let mut r = ((r1 - 0.5).ceil() + 0.5).floor() as i64 + 1;
    let band = |l: i64, r: i64| {
        normal_cdf((r as f64 - 0.5 - mu) / sigma) - normal_cdf((l as f64 - 0.5 - mu) / sigma)
    };
    let held = band(l, r);
    // The symmetric band, or one order less on the right if that still
    // holds enough (benchstat leans left).
    let biased = band(l, r - 1);
    if biased >= confidence && biased < held {
        r -= 1;
    }
    l = l.max(0);
    r = r.min(n as i64 + 1);
    (
        usize::try_from(l).unwrap_or(0),
        usize::try_from(r).unwrap_or(0),
    )
}

/// P(X = k) for X ~ binomial(n, 1/2), exact for the sizes it is used at.
fn binomial_half(n: usize, k: usize) -> f64 {
    choose(n, k) * 0.5f64.powi(i32::try_from(n).unwrap_or(i32::MAX))
}

/// The binomial coefficient, as a float (exact while it fits 2^53).
fn choose(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    let mut c = 1.0;
    for i in 0..k {
        c = c * (n - i) as f64 / (i + 1) as f64;
    }
    c.round()
}

/// Without ties, the exact distribution of U is used up to this many
/// values in each sample; with ties, up to `EXACT_TIES_LIMIT` (benchstat's
/// limits).
const EXACT_LIMIT: usize = 50;
const EXACT_TIES_LIMIT: usize = 25;

/// The two-sided p-value of the Mann-Whitney U test of `a` against `b`,
/// or `None` where the test says nothing (an empty sample, or every value
/// equal), which benchstat reports as no difference.
pub fn u_test(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // Values in order, each with the sample it came from; then the runs of
    // equal values (tie groups), and twice U of `a` (a tie counts half).
    let mut merged: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    merged.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut groups: Vec<usize> = Vec::new();
    let mut twice_u1: usize = 0;
    let mut b_below = 0;
    let mut i = 0;
    while let Some(&(value, _)) = merged.get(i) {
        let run: Vec<bool> = merged
            .get(i..)
            .unwrap_or_default()
            .iter()
            .take_while(|(x, _)| *x == value)
            .map(|(_, from_a)| *from_a)
            .collect();
        let in_a = run.iter().filter(|&&from_a| from_a).count();
        let in_b = run.len() - in_a;
        twice_u1 += in_a * (2 * b_below + in_b);
        b_below += in_b;
        groups.push(run.len());
        i += run.len();
    }
    let twice_u2 = 2 * n1 * n2 - twice_u1;
    let ties = groups.iter().any(|&t| t > 1);
    let limit = if ties { EXACT_TIES_LIMIT } else { EXACT_LIMIT };
    if n1 <= limit && n2 <= limit {
        if groups.len() == 1 {
            return None;
        }
        if twice_u1 == twice_u2 {
            // The distribution is symmetric about this U: the whole of it.
            return Some(1.0);
        }
        return Some(2.0 * exact_cdf(n1, &groups, twice_u1.min(twice_u2)));
    }
    let n = (n1 + n2) as f64;
    let product = (n1 * n2) as f64;
    let tie_sum: f64 = groups.iter().map(|&t| (t * t * t - t) as f64).sum();
    let sigma = (product * ((n + 1.0) - tie_sum / (n * (n - 1.0))) / 12.0).sqrt();
    if sigma == 0.0 {
        return None;
    }
    let mut numer = twice_u1 as f64 / 2.0 - product / 2.0;
    // The continuity correction, toward the center.
    if numer != 0.0 {
        numer -= 0.5 * numer.signum();
    }
    let z = numer / sigma;
    Some(2.0 * normal_cdf(z).min(1.0 - normal_cdf(z)))
}

/// P(2U <= `twice_u`) for the U of a sample of `n1` when the merged
/// values fall into tie groups of the sizes `groups`, every way of
/// choosing which `n1` of them are the first sample's being equally
/// likely. Counted group by group: choosing `k` of a group of `t` when
/// `before_a` of the first sample and `before_b` of the second came before
/// it adds `k * (2 * before_b + (t - k))` to 2U, in C(t, k) ways.
fn exact_cdf(n1: usize, groups: &[usize], twice_u: usize) -> f64 {
    let total: usize = groups.iter().sum();
    let n2 = total - n1;
    let width = 2 * n1 * n2 + 1;
    // ways[a][u]: ways to have put `a` values into the first sample with
    // 2U = u so far.
    let mut ways = vec![vec![0.0f64; width]; n1 + 1];
    if let Some(first) = ways.first_mut().and_then(|row| row.first_mut()) {
        *first = 1.0;
    }
    let mut seen = 0;
    for &t in groups {
        let weights: Vec<f64> = (0..=t).map(|k| choose(t, k)).collect();
        let mut next = vec![vec![0.0f64; width]; n1 + 1];
        for (a, row) in ways.iter().enumerate() {
            let before_b = seen - a.min(seen);
            for (u, &count) in row.iter().enumerate() {
                if count == 0.0 {
                    continue;
                }
                for (k, weight) in weights.iter().enumerate().take(n1 - a + 1) {
                    let added = k * (2 * before_b + (t - k));
                    if let Some(cell) = next.get_mut(a + k).and_then(|r| r.get_mut(u + added)) {
                        *cell += count * weight;
                    }
                }
            }
        }
        ways = next;
        seen += t;
    }
    let at_most: f64 = ways
        .get(n1)
        .map(|row| row.iter().take(twice_u + 1).sum())
        .unwrap_or(0.0);
    at_most / choose(total, n1)
}

/// The fewest values a side with which the U test can find a difference
/// at [`ALPHA`]: the smallest p of n against n is 2 / C(2n, n).
pub fn fewest_for_difference() -> usize {
    (1..=EXACT_LIMIT)
        .find(|&n| 2.0 / choose(2 * n, n) <= ALPHA)
        .unwrap_or(EXACT_LIMIT)
}

/// The fewest values that bound the median on both sides at
/// [`CONFIDENCE`].
pub fn fewest_for_interval() -> usize {
    (2..=EXACT_INTERVAL_LIMIT)
        .find(|&n| {
            let (lo, hi) = median_orders(n, CONFIDENCE);
            lo > 0 && hi <= n
        })
        .unwrap_or(EXACT_INTERVAL_LIMIT)
}

/// The geometric mean of positive values, or `None` if there are none or
/// one is not positive.
pub fn geomean(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|&v| v <= 0.0 || !v.is_finite()) {
        return None;
    }
    let mean_log = values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64;
    Some(mean_log.exp())
}

/// A change is significant when its p-value is at most [`ALPHA`]
/// (benchstat prints `~` only above it).
pub fn significant(p: f64) -> bool {
    p <= ALPHA
}

/// The standard normal distribution function.
fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function: its Taylor series where it converges
/// fast, its continued fraction in the tails (both to full precision).
fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 3.0 {
        // erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x * x / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        return 1.0 - sum * std::f64::consts::FRAC_2_SQRT_PI;
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
    // evaluated from the tail inward.
    let mut fraction = x;
    for k in (1..=60).rev() {
        fraction = x + (k as f64 / 2.0) / fraction;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / fraction
}

/// The standard normal quantile, by bisection of [`normal_cdf`].
fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One fixed pair of samples (ns/op of "v1" and "v2") and what
    /// benchstat said of it.
    struct Case {
        v1: &'static [f64],
        v2: &'static [f64],
        /// Median, lower and upper bound of each sample.
        summaries: [(f64, f64, f64); 2],
        /// The U test's p-value (1 where the test says nothing).
        p: f64,
        /// The line `benchstat -col goamd64` printed for it.
        printed: &'static str,
    }

    /// The expected numbers come from the real benchstat,
    /// golang.org/x/perf v0.0.0-20260908200009-22c9c6c9d4da (with
    /// github.com/aclements/go-moremath v0.0.0-20210112150236-f10218a38794),
    /// run once on 2026-12-04: `printed` is its table row for a file holding
    /// each case's values as `BenchmarkX 1000 V ns/op` lines under
    /// `goamd64: v1` and `goamd64: v2`; `summaries` and `p` are the same
    /// numbers unrounded (printed with %.17g, written here as the
    /// shortest decimal of the same double), from a ten-line Go program that passes the
    /// values to benchstat's own package (`benchmath.AssumeNothing`'s
    /// `Summary` at 0.95 and `Compare`).
    const CASES: &[Case] = &[
        // No ties, six a side: the smallest p of six values.
        Case {
            v1: &[100.0, 103.0, 101.0, 99.0, 104.0, 102.0],
            v2: &[80.0, 82.0, 79.0, 81.0, 83.0, 78.0],
            summaries: [(101.5, 99.0, 104.0), (80.5, 78.0, 83.0)],
            p: 0.002164502164502165,
            printed: "X   101.50n ± 2%   80.50n ± 3%  -20.69% (p=0.002 n=6)",
        },
        // Ties, U at the center of its distribution.
        Case {
            v1: &[100.0, 101.0, 101.0, 102.0, 103.0, 103.0],
            v2: &[101.0, 101.0, 102.0, 104.0, 99.0, 103.0],
            summaries: [(101.5, 100.0, 103.0), (101.5, 99.0, 104.0)],
            p: 1.0,
            printed: "X   101.5n ± 1%   101.5n ± 2%  ~ (p=1.000 n=6)",
        },
        // No ties, ten a side, no difference.
        Case {
            v1: &[50.1, 50.7, 49.9, 51.2, 50.3, 50.0, 49.5, 50.8, 50.2, 51.0],
            v2: &[50.4, 49.8, 50.9, 51.3, 50.6, 49.7, 50.5, 51.1, 50.05, 49.6],
            summaries: [(50.25, 49.9, 51.0), (50.45, 49.7, 51.1)],
            p: 0.9705124596765466,
            printed: "X   50.25n ± 1%   50.45n ± 1%  ~ (p=0.971 n=10)",
        },
        // Ties, twelve a side: the exact distribution with ties.
        Case {
            v1: &[
                10.0, 11.0, 12.0, 10.0, 11.0, 12.0, 10.0, 11.0, 12.0, 13.0, 14.0, 10.0,
            ],
            v2: &[
                11.0, 12.0, 13.0, 11.0, 12.0, 13.0, 12.0, 13.0, 14.0, 12.0, 13.0, 15.0,
            ],
            summaries: [(11.0, 10.0, 12.0), (12.5, 12.0, 13.0)],
            p: 0.021167417856070684,
            printed: "X   11.00n ± 9%   12.50n ± 4%  +13.64% (p=0.021 n=12)",
        },
        // 35 a side: the interval from the normal approximation, the exact
        // U distribution without ties.
        Case {
            v1: &[
                191.0, 198.8, 204.0, 199.0, 200.8, 192.2, 198.7, 197.9, 204.9, 200.8, 199.9, 196.2,
                195.6, 200.0, 206.9, 190.1, 185.3, 210.4, 208.5, 203.5, 202.0, 198.0, 198.2, 193.9,
                203.3, 199.0, 190.0, 197.4, 197.2, 196.7, 210.3, 205.8, 183.5, 202.7, 205.8,
            ],
            v2: &[
                204.1, 201.4, 186.6, 201.8, 197.5, 204.9, 199.7, 189.3, 207.0, 190.9, 203.1, 199.5,
                194.3, 185.2, 192.6, 192.3, 196.2, 196.1, 205.7, 199.4, 203.4, 191.0, 194.8, 202.0,
                202.3, 200.8, 194.8, 191.6, 206.5, 193.5, 195.1, 205.3, 197.5, 193.8, 201.6,
            ],
            summaries: [(199.0, 197.4, 202.0), (197.5, 194.8, 201.6)],
            p: 0.3657069829858588,
            printed: "X   199.0n ± 2%   197.5n ± 2%  ~ (p=0.366 n=35)",
        },
        // Five a side: too few for a 95% interval, enough for p < 0.05.
        Case {
            v1: &[30.0, 31.0, 32.0, 33.0, 34.0],
            v2: &[20.0, 21.0, 22.0, 23.0, 24.0],
            summaries: [
                (32.0, f64::NEG_INFINITY, 34.0),
                (22.0, f64::NEG_INFINITY, 24.0),
            ],
            p: 0.007936507936507938,
            printed: "X   32.00n ± ∞ ¹   22.00n ± ∞ ¹  -31.25% (p=0.008 n=5)",
        },
        // Every value equal: the test says nothing.
        Case {
            v1: &[7.0; 6],
            v2: &[7.0; 6],
            summaries: [(7.0, 7.0, 7.0), (7.0, 7.0, 7.0)],
            p: 1.0,
            printed: "X   7.000n ± 0%   7.000n ± 0%  ~ (p=1.000 n=6) ¹",
        },
        // Odd count, one sample spread wider.
        Case {
            v1: &[100.0, 102.0, 104.0, 106.0, 108.0, 110.0, 112.0],
            v2: &[90.0, 95.0, 100.0, 105.0, 110.0, 115.0, 120.0],
            summaries: [(106.0, 100.0, 112.0), (105.0, 90.0, 120.0)],
            p: 0.8758741258741258,
            printed: "X   106.0n ± 6%   105.0n ± 14%  ~ (p=0.876 n=7)",
        },
        // Heavy ties, eight a side: the exact distribution with ties.
        Case {
            v1: &[5.0, 6.0, 5.0, 6.0, 5.0, 6.0, 7.0, 5.0],
            v2: &[6.0, 7.0, 6.0, 7.0, 6.0, 8.0, 7.0, 6.0],
            summaries: [(5.5, 5.0, 6.0), (6.5, 6.0, 7.0)],
            p: 0.04024864024864025,
            printed: "X   5.500n ± 9%   6.500n ± 8%  +18.18% (p=0.040 n=8)",
        },
        // Thirty a side, five values repeated: past the exact limit with
        // ties, so the normal approximation with the tie and continuity
        // corrections.
        Case {
            v1: &[
                10.0, 12.0, 14.0, 11.0, 13.0, 10.0, 12.0, 14.0, 11.0, 13.0, 10.0, 12.0, 14.0, 11.0,
                13.0, 10.0, 12.0, 14.0, 11.0, 13.0, 10.0, 12.0, 14.0, 11.0, 13.0, 10.0, 12.0, 14.0,
                11.0, 13.0,
            ],
            v2: &[
                11.0, 14.0, 12.0, 15.0, 13.0, 11.0, 14.0, 12.0, 15.0, 13.0, 11.0, 14.0, 12.0, 15.0,
                13.0, 11.0, 14.0, 12.0, 15.0, 13.0, 11.0, 14.0, 12.0, 15.0, 13.0, 11.0, 14.0, 12.0,
                15.0, 13.0,
            ],
            summaries: [(12.0, 11.0, 13.0), (13.0, 12.0, 14.0)],
            p: 0.015140398645618823,
            printed: "X   12.00n ± 8%   13.00n ± 8%  +8.33% (p=0.015 n=30)",
        },
    ];

    fn close(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    #[test]
    fn medians_and_intervals_are_benchstat_s() {
        for case in CASES {
            for (values, (center, lo, hi)) in [case.v1, case.v2].iter().zip(case.summaries) {
                let got = summarize(values).unwrap();
                assert_eq!(
                    (got.center, got.lo, got.hi),
                    (center, lo, hi),
                    "{}",
                    case.printed
                );
            }
        }
    }

    #[test]
    fn u_test_p_values_are_benchstat_s() {
        for case in CASES {
            let p = u_test(case.v1, case.v2).unwrap_or(1.0);
            assert!(close(p, case.p), "{p} != {}: {}", case.p, case.printed);
            // The other way round, the same.
            let back = u_test(case.v2, case.v1).unwrap_or(1.0);
            assert!(close(back, case.p), "{back}: {}", case.printed);
        }
    }

    /// The row benchstat printed, re-made from mgo's numbers in
    /// benchstat's layout: the same percent, p and "~".
    #[test]
    fn printed_rows_agree_with_benchstat_s() {
        for case in CASES {
            let [a, b] = [case.v1, case.v2].map(|v| summarize(v).unwrap());
            let p = u_test(case.v1, case.v2).unwrap_or(1.0);
            let delta = if !significant(p) {
                "~".to_owned()
            } else {
                format!("{:+.2}%", (b.center / a.center - 1.0) * 100.0)
            };
            let expected = format!("{delta} (p={p:.3} n={})", case.v1.len());
            assert!(
                case.printed.contains(&expected),
                "{expected}: {}",
                case.printed
            );
            for s in [a, b] {
                assert!(
                    case.printed.contains(&format!("± {}", s.range())),
                    "± {}: {}",
                    s.range(),
                    case.printed
                );
            }
        }
    }

    #[test]
    fn exact_and_approximate_u_agree_where_both_apply() {
        // 26 a side with ties is past the exact limit; the exact count
        // must still be close to the approximation there.
        let a: Vec<f64> = (0..26).map(|i| f64::from(i / 2)).collect();
        let b: Vec<f64> = (0..26).map(|i| f64::from(i / 2 + 1)).collect();
        let approx = u_test(&a, &b).unwrap();
        let mut groups = Vec::new();
        let mut all: Vec<f64> = a.iter().chain(&b).copied().collect();
        all.sort_by(f64::total_cmp);
        let mut i = 0;
        while i < all.len() {
            let run = all.iter().skip(i).take_while(|&&x| x == all[i]).count();
            groups.push(run);
            i += run;
        }
        // 2U of `a`: pairs below count 2, ties 1.
        let twice_u: usize = a
            .iter()
            .map(|x| {
                b.iter()
                    .map(|y| usize::from(x > y) * 2 + usize::from(x == y))
                    .sum::<usize>()
            })
            .sum();
        let exact = 2.0 * exact_cdf(26, &groups, twice_u.min(2 * 26 * 26 - twice_u));
        assert!((exact - approx).abs() < 0.02, "{exact} {approx}");
    }

    /// benchstat's own warnings: "need >= 4 samples to detect a
    /// difference at alpha level 0.05", "need >= 6 samples for confidence
    /// interval at level 0.95".
    #[test]
    fn the_fewest_runs_are_benchstat_s() {
        assert_eq!(fewest_for_difference(), 4);
        assert_eq!(fewest_for_interval(), 6);
    }

    #[test]
    fn geomean_and_erfc_hold_known_values() {
        assert!(close(geomean(&[2.0, 8.0]).unwrap(), 4.0));
        assert_eq!(geomean(&[1.0, 0.0]), None);
        assert_eq!(geomean(&[]), None);
        // erfc(0.5) and erfc(3.5) to 15 digits (Abramowitz and Stegun's
        // tables hold them).
        assert!((erfc(0.5) - 0.479_500_122_186_953_5).abs() < 1e-15);
        assert!((erfc(3.5) - 7.430_983_723_414_128e-7).abs() < 1e-20);
        assert!((normal_quantile(0.025) + 1.959_963_984_540_054).abs() < 1e-12);
    }
}
