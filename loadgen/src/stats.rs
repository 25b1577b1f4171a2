//! Percentiles, medians, and the accounting of the versions one subscriber received.

/// The `p`-th percentile (0–100) of sorted samples, nearest-rank: the smallest sample with at
/// least `p`% of the samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    debug_assert!(
        sorted.windows(2).all(|w| w[0] <= w[1]),
        "samples are sorted"
    );
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The median of values (the mean of the middle two for an even count); `None` for none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// What one subscriber got of the versions it was owed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    /// Owed versions received at least once.
    pub delivered: u64,
    /// Owed versions never received.
    pub missing: u64,
    /// Receipts of a version already received.
    pub duplicate: u64,
    /// First receipts of a version lower than one received before it.
    pub out_of_order: u64,
}

impl Sequence {
    pub fn add(&mut self, other: Sequence) {
        self.delivered += other.delivered;
        self.missing += other.missing;
        self.duplicate += other.duplicate;
        self.out_of_order += other.out_of_order;
    }
}

/// Accounts `received` (versions in arrival order) against the owed versions `first..=last`.
/// Versions outside the range (the readiness barrier's, or a stray newer one) are not counted:
/// only the measured updates are owed.
pub fn account(first: u32, last: u32, received: impl IntoIterator<Item = u32>) -> Sequence {
    let mut out = Sequence::default();
    if last < first {
        return out;
    }
    let mut seen = vec![false; (last - first + 1) as usize];
    let mut highest: Option<u32> = None;
    for v in received {
        if v < first || v > last {
            continue;
        }
        let slot = &mut seen[(v - first) as usize];
        if *slot {
            out.duplicate += 1;
            continue;
        }
        *slot = true;
        out.delivered += 1;
        if highest.is_some_and(|h| v < h) {
            out.out_of_order += 1;
        }
        highest = Some(highest.map_or(v, |h| h.max(v)));
    }
    out.missing = seen.iter().filter(|s| !**s).count() as u64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_p99_of_ten_samples_is_the_largest() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 99.0), Some(10));
        assert_eq!(percentile(&v, 90.0), Some(9));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn an_in_order_complete_sequence_has_nothing_to_report() {
        let s = account(5, 9, [5, 6, 7, 8, 9]);
        assert_eq!(
            s,
            Sequence {
                delivered: 5,
                ..Default::default()
            }
        );
    }

    #[test]
    fn missing_duplicate_and_out_of_order_versions_are_counted_apart() {
        // 6 missing; 7 twice; 5 after 8.
        let s = account(4, 9, [4, 7, 8, 7, 5, 9]);
        assert_eq!(
            s,
            Sequence {
                delivered: 5,
                missing: 1,
                duplicate: 1,
                out_of_order: 1,
            }
        );
    }

    #[test]
    fn versions_outside_the_owed_range_are_ignored() {
        // 2 and 3 are the barrier's; 12 is not owed.
        let s = account(4, 6, [2, 3, 4, 3, 5, 12, 6]);
        assert_eq!(
            s,
            Sequence {
                delivered: 3,
                ..Default::default()
            }
        );
        assert_eq!(account(4, 6, []).missing, 3);
        assert_eq!(account(4, 3, [4]), Sequence::default());
    }
}
