//! Medians and ratios: every figure the harness reports is a median of repeated runs, compared
//! with the baseline measured in the same run.

/// The median of `values` (the mean of the two middle values for an even count); `None` if
/// there are none or one is not a number.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// `value / baseline`, or `None` when the baseline is zero, negative or missing.
pub fn ratio(value: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0 && value.is_finite()).then(|| value / baseline)
}

/// The `p`-th percentile (0 to 100) of `sorted` (ascending) by nearest rank; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A ratio as the report prints it: `1.23×`, or `n/a`.
pub fn format_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 100.0 => format!("{r:.0}×"),
        Some(r) if r >= 10.0 => format!("{r:.1}×"),
        Some(r) => format!("{r:.2}×"),
        None => "n/a".into(),
    }
}

/// A duration in milliseconds as the report prints it (three significant digits or so).
pub fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[1.0, f64::NAN]), None);
        // An outlier does not move it.
        assert_eq!(median(&[1.0, 1.1, 0.9, 1000.0, 1.0]), Some(1.0));
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(f64::INFINITY, 1.0), None);
        assert_eq!(format_ratio(Some(1.234)), "1.23×");
        assert_eq!(format_ratio(Some(12.34)), "12.3×");
        assert_eq!(format_ratio(Some(1234.0)), "1234×");
        assert_eq!(format_ratio(None), "n/a");
        assert_eq!(format_ms(1.234), "1.23 ms");
        assert_eq!(format_ms(123.4), "123 ms");
    }
}
