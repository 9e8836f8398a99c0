//! The soak's figures from an RSS series: the slope after the warm-up (least squares), the peak and
//! the steady state.

use serde::Serialize;

/// The least-squares slope of `y` over `t` (units of y per unit of t); `None` with fewer than two
/// distinct times.
pub fn slope(t: &[f64], y: &[f64]) -> Option<f64> {
    let n = t.len().min(y.len());
    if n < 2 {
        return None;
    }
    let (t, y) = (&t[..n], &y[..n]);
    let nf = n as f64;
    let mt = t.iter().sum::<f64>() / nf;
    let my = y.iter().sum::<f64>() / nf;
    let (mut sty, mut stt) = (0.0, 0.0);
    for (ti, yi) in t.iter().zip(y) {
        sty += (ti - mt) * (yi - my);
        stt += (ti - mt) * (ti - mt);
    }
    (stt > 0.0).then(|| sty / stt)
}

/// The median (the mean of the two middle values for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// About `points` samples of `(t, RSS)` evenly spaced over the series, as `(seconds, MiB)`
/// (unreadable samples left out).
pub fn curve(t: &[f64], rss: &[Option<u64>], points: usize) -> Vec<(f64, f64)> {
    let step = (t.len() / points.max(1)).max(1);
    t.iter()
        .zip(rss)
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 1 == t.len())
        .filter_map(|(_, (&t, r))| Some((t, (*r)? as f64 / MIB)))
        .collect()
}

/// One node's memory over the soak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NodeMemory {
    pub samples: usize,
    /// Mean RSS after the warm-up, MiB.
    pub mean_mib: f64,
    /// The least-squares slope of RSS after the warm-up, in % of that mean per 10 minutes.
    pub slope_pct_per_10min: Option<f64>,
    /// The largest RSS of the whole run, MiB.
    pub peak_mib: f64,
    /// The median RSS of the run's second half (the steady state), MiB.
    pub steady_mib: f64,
    /// `peak / steady`.
    pub peak_ratio: f64,
    pub first_mib: f64,
    pub last_mib: f64,
}

const MIB: f64 = 1024.0 * 1024.0;

impl NodeMemory {
    /// From samples `(t seconds, RSS bytes)` (unreadable samples left out); `warmup` seconds at the
    /// start are excluded from the mean and the slope. `None` without samples after the warm-up.
    pub fn of(t: &[f64], rss: &[Option<u64>], warmup: f64) -> Option<NodeMemory> {
        let points: Vec<(f64, f64)> = t
            .iter()
            .zip(rss)
            .filter_map(|(&t, r)| Some((t, (*r)? as f64)))
            .collect();
        let (first, last) = (points.first()?.1, points.last()?.1);
        let end = points.last()?.0;
        let after: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0 >= warmup).collect();
        if after.is_empty() {
            return None;
        }
        let (ta, ya): (Vec<f64>, Vec<f64>) = after.iter().copied().unzip();
        let mean = ya.iter().sum::<f64>() / ya.len() as f64;
        let slope_pct = slope(&ta, &ya).map(|s| s * 600.0 / mean * 100.0);
        let peak = points.iter().map(|p| p.1).fold(0.0, f64::max);
        let second_half: Vec<f64> = points
            .iter()
            .filter(|p| p.0 >= end / 2.0)
            .map(|p| p.1)
            .collect();
        let steady = median(&second_half)?;
        Some(NodeMemory {
            samples: points.len(),
            mean_mib: mean / MIB,
            slope_pct_per_10min: slope_pct,
            peak_mib: peak / MIB,
            steady_mib: steady / MIB,
            peak_ratio: if steady > 0.0 { peak / steady } else { 0.0 },
            first_mib: first / MIB,
            last_mib: last / MIB,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let t: Vec<f64> = (0..100).map(f64::from).collect();
        let y: Vec<f64> = t.iter().map(|t| 3.0 * t + 7.0).collect();
        assert!((slope(&t, &y).expect("slope") - 3.0).abs() < 1e-9);
        // Alternating noise around a constant: no slope.
        let flat: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 10.0 } else { 12.0 })
            .collect();
        assert!(slope(&t, &flat).expect("slope").abs() < 0.001);
        assert_eq!(slope(&[1.0], &[1.0]), None);
        assert_eq!(slope(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn the_curve_keeps_about_n_points_and_the_last() {
        let t: Vec<f64> = (0..100).map(f64::from).collect();
        let rss: Vec<Option<u64>> = (0..100u64).map(|i| Some(i * 1024 * 1024)).collect();
        let c = curve(&t, &rss, 20);
        assert_eq!(c.len(), 21);
        assert_eq!(c[1], (5.0, 5.0));
        assert_eq!(c.last(), Some(&(99.0, 99.0)));
        assert_eq!(curve(&t[..3], &rss[..3], 20).len(), 3);
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn node_memory_slope_in_percent_per_ten_minutes() {
        // 100 MiB growing by 1 MiB per minute for 30 minutes, sampled each second; a 200 MiB spike at
        // 60 s, inside the 5-minute warm-up.
        let t: Vec<f64> = (0..1_800).map(f64::from).collect();
        let rss: Vec<Option<u64>> = t
            .iter()
            .map(|&s| {
                let mib = if s == 60.0 { 200.0 } else { 100.0 + s / 60.0 };
                Some((mib * MIB) as u64)
            })
            .collect();
        let m = NodeMemory::of(&t, &rss, 300.0).expect("figures");
        // Mean after warm-up: 100 + (300 + 1799) / 2 / 60 ≈ 117.5 MiB; slope 10 MiB / 10 min ≈ 8.5 %.
        assert!((m.mean_mib - 117.49).abs() < 0.05, "{m:?}");
        let slope = m.slope_pct_per_10min.expect("slope");
        assert!((slope - 10.0 / m.mean_mib * 100.0).abs() < 0.01, "{m:?}");
        // Peak 200 MiB (the spike) over the second half's median ≈ 122.5 MiB.
        assert!((m.peak_mib - 200.0).abs() < 0.01);
        assert!((m.steady_mib - 122.5).abs() < 0.05, "{m:?}");
        assert!((m.peak_ratio - 200.0 / 122.5).abs() < 0.01);
        // Flat memory: slope about 0, peak ratio 1.
        let flat: Vec<Option<u64>> = t.iter().map(|_| Some((50.0 * MIB) as u64)).collect();
        let f = NodeMemory::of(&t, &flat, 300.0).expect("figures");
        assert!(f.slope_pct_per_10min.expect("slope").abs() < 1e-9);
        assert!((f.peak_ratio - 1.0).abs() < 1e-9);
        // Unreadable samples are left out; nothing after the warm-up: no figures.
        assert_eq!(NodeMemory::of(&t[..10], &flat[..10], 300.0), None);
    }
}
