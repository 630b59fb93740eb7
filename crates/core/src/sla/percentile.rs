//! Exact nearest-rank percentiles over stored values: the p-th percentile of n sorted values is
//! the value at rank ceil(p/100 * n) (1-based), always one of the values themselves, never an
//! interpolation. Not here: collecting the values (aggregation).
use super::model::Latency;

/// The method's name as every format states it.
pub const METHOD: &str = "nearest-rank";

/// The `p`-th percentile (0 < p <= 100) of `sorted` (ascending) by nearest rank; `None` when empty.
pub fn nearest_rank(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    // ceil(p * n / 100) in integers: exact for every n, no float rounding at rank boundaries.
    let rank = (u64::from(p.min(100)) * n).div_ceil(100).max(1);
    sorted.get((rank - 1) as usize).copied()
}

/// Sorts `values` in place and returns their p50/p95/p99/max.
pub fn latency(values: &mut [u64]) -> Latency {
    values.sort_unstable();
    Latency {
        p50: nearest_rank(values, 50),
        p95: nearest_rank(values, 95),
        p99: nearest_rank(values, 99),
        max: values.last().copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_a_stored_value() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 50), Some(50));
        assert_eq!(nearest_rank(&v, 95), Some(95));
        assert_eq!(nearest_rank(&v, 99), Some(99));
        assert_eq!(nearest_rank(&v, 100), Some(100));
        // n = 3: rank ceil(1.5) = 2 for p50, ceil(2.85) = 3 for p95.
        assert_eq!(nearest_rank(&[10, 20, 30], 50), Some(20));
        assert_eq!(nearest_rank(&[10, 20, 30], 95), Some(30));
        assert_eq!(nearest_rank(&[7], 1), Some(7));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn latency_sorts_first() {
        let mut v = vec![300, 100, 200, 1000];
        let l = latency(&mut v);
        assert_eq!(
            (l.p50, l.p95, l.p99, l.max),
            (Some(200), Some(1000), Some(1000), Some(1000))
        );
        assert_eq!(latency(&mut []), Latency::default());
    }
}
