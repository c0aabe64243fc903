//! How a window is split and sampled: time strata, quotas in proportion to exact counts, sample-key
//! spans and bottom-k selection, page sizes. Pure, no I/O.
//!
//! A window with more points than its limit is split into `K` equal time strata; stratum `i` with `n_i`
//! points gets a quota `q_i ≈ limit × n_i / n` (largest remainders, so the quotas add up to the limit and
//! never exceed a stratum's count). Each stratum is then sampled on its own — by Qdrant's random-sample
//! query, by the smallest sample keys, or by a seeded reservoir — so the sample follows the window's
//! arrival rate whatever the sampler does inside a stratum.

use std::cmp::Ordering;

use super::TimeRange;

/// What one stratum of a window contributes to the sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Points of the stratum (exact count).
    pub count: u64,
    /// Points sampled from it.
    pub take: u64,
}

/// Splits a window into at most `k` equal, adjacent, half-open time ranges that cover it exactly. A
/// window open on either side (or `k <= 1`) is one stratum; so is a span shorter than `k` nanoseconds.
pub fn strata(range: Option<TimeRange>, k: usize) -> Vec<Option<TimeRange>> {
    let Some(TimeRange {
        start: Some(start),
        end: Some(end),
    }) = range
    else {
        return vec![range];
    };
    let span = end.as_nanosecond() - start.as_nanosecond();
    let k = k.max(1);
    if k == 1 || span < k as i128 {
        return vec![range];
    }
    let boundary = |i: usize| -> Option<jiff::Timestamp> {
        match i {
            0 => Some(start),
            i if i == k => Some(end),
            i => jiff::Timestamp::from_nanosecond(start.as_nanosecond() + span * i as i128 / k as i128).ok(),
        }
    };
    let bounds: Option<Vec<jiff::Timestamp>> = (0..=k).map(boundary).collect();
    match bounds {
        Some(bounds) => bounds
            .windows(2)
            .map(|pair| {
                Some(TimeRange {
                    start: Some(pair[0]),
                    end: Some(pair[1]),
                })
            })
            .collect(),
        None => vec![range],
    }
}

/// Quotas in proportion to the strata's counts (Hamilton's largest remainders, ties to the earlier
/// stratum): they add up to `min(limit, Σ counts)` and no quota exceeds its count. When everything fits,
/// every point is taken.
pub fn allocate(counts: &[u64], limit: u64) -> Vec<Quota> {
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    if total <= u128::from(limit) {
        return counts.iter().map(|&count| Quota { count, take: count }).collect();
    }
    let limit128 = u128::from(limit);
    let mut quotas: Vec<Quota> = Vec::with_capacity(counts.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(counts.len());
    for (i, &count) in counts.iter().enumerate() {
        let ideal = limit128 * u128::from(count);
        quotas.push(Quota {
            count,
            take: (ideal / total) as u64,
        });
        remainders.push((ideal % total, i));
    }
    let assigned: u64 = quotas.iter().map(|q| q.take).sum();
    let mut left = limit - assigned;
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (remainder, i) in remainders {
        if left == 0 {
            break;
        }
        if remainder > 0 {
            quotas[i].take += 1;
            left -= 1;
        }
    }
    quotas
}

/// SplitMix64: a fixed, well-mixed function of a 64-bit value.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` from 64 bits (their top 53).
pub fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The sample key `driftwatch qdrant-load --sample-key-field` writes for a point id: uniform in `[0, 1)`,
/// independent of the order and time of arrival.
pub fn sample_key_of_id(id: u64) -> f64 {
    unit(mix64(id ^ 0x5DEE_CE66_D1CE_5EED))
}

/// Where a seed starts on the circle of sample keys: the sample is the points whose key follows this
/// offset most closely, so another seed draws another (equally uniform) sample.
pub fn key_offset(seed: u64) -> f64 {
    unit(mix64(seed))
}

/// A key's distance after the offset, going round the circle: in `[0, 1)`.
pub fn rotated(key: f64, offset: f64) -> f64 {
    let r = key - offset;
    if r < 0.0 { r + 1.0 } else { r }
}

/// Whether a payload value is a usable sample key.
pub fn valid_key(key: f64) -> bool {
    key.is_finite() && (0.0..1.0).contains(&key)
}

/// The keys within `width` after `offset` on the circle, as one or two half-open ranges `[gte, lt)`.
pub fn key_ranges(offset: f64, width: f64) -> Vec<(f64, f64)> {
    if width >= 1.0 {
        return vec![(0.0, 1.0)];
    }
    let end = offset + width;
    if end <= 1.0 {
        vec![(offset, end)]
    } else {
        vec![(offset, 1.0), (0.0, end - 1.0)]
    }
}

/// The keys expected in a span chosen for a quota `q`: three standard deviations above it, so one count
/// suffices in more than 99.8 % of strata (else the span grows and is counted again).
fn with_margin(q: f64) -> f64 {
    q + 3.0 * q.sqrt() + 5.0
}

/// The first span of keys to count for a quota of `take` out of `count` points.
pub fn first_width(take: u64, count: u64) -> f64 {
    if count == 0 || take >= count {
        return 1.0;
    }
    (with_margin(take as f64) / count as f64).min(1.0)
}

/// The next span when `found` points fell in `width` but `take` are needed.
pub fn next_width(width: f64, take: u64, found: u64) -> f64 {
    if found == 0 {
        return (width * 4.0).min(1.0);
    }
    (width * with_margin(take as f64) / found as f64 * 1.25)
        .max(width * 1.5)
        .min(1.0)
}

/// A point id in Qdrant's order: numbers before UUIDs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdKey {
    Num(u64),
    Uuid(String),
}

/// The positions of the `take` candidates with the smallest `(rotated key, id)`, in that order: the
/// same set and order whatever order the candidates came in.
pub fn bottom_k(candidates: &[(f64, IdKey)], take: usize) -> Vec<usize> {
    let order = |a: &usize, b: &usize| -> Ordering {
        let (ka, ia) = &candidates[*a];
        let (kb, ib) = &candidates[*b];
        ka.total_cmp(kb).then_with(|| ia.cmp(ib))
    };
    let mut positions: Vec<usize> = (0..candidates.len()).collect();
    if take < positions.len() {
        if take > 0 {
            positions.select_nth_unstable_by(take - 1, order);
        }
        positions.truncate(take);
    }
    positions.sort_by(order);
    positions
}

/// Points per scroll page: the configured size, else about 1 MiB of vectors (64 to 8192 points).
pub fn page_size(dimension: usize, configured: Option<u32>) -> u32 {
    if let Some(size) = configured {
        return size.max(1);
    }
    let per_point = dimension.saturating_mul(4).saturating_add(64).max(1);
    ((1usize << 20) / per_point).clamp(64, 8192) as u32
}

/// The ChaCha stream of stratum `index` of a window read with `stream`: strata draw independently.
pub fn stratum_stream(stream: u64, index: usize) -> u64 {
    stream.wrapping_mul(1 << 16).wrapping_add(index as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn strata_cover_the_window_exactly_and_are_equal() {
        let range = TimeRange {
            start: Some(ts("2026-03-01T00:00:00Z")),
            end: Some(ts("2026-03-09T00:00:00Z")),
        };
        let s = strata(Some(range), 8);
        assert_eq!(s.len(), 8);
        assert_eq!(s[0].unwrap().start, range.start);
        assert_eq!(s[7].unwrap().end, range.end);
        for pair in s.windows(2) {
            assert_eq!(pair[0].unwrap().end, pair[1].unwrap().start);
        }
        assert_eq!(s[1].unwrap().start, Some(ts("2026-03-02T00:00:00Z")));
    }

    #[test]
    fn an_open_window_or_a_tiny_span_is_one_stratum() {
        let open = TimeRange {
            start: Some(ts("2026-03-01T00:00:00Z")),
            end: None,
        };
        assert_eq!(strata(Some(open), 8), vec![Some(open)]);
        assert_eq!(strata(None, 8), vec![None]);
        let tiny = TimeRange {
            start: Some(ts("2026-03-01T00:00:00Z")),
            end: Some(ts("2026-03-01T00:00:00.000000005Z")),
        };
        assert_eq!(strata(Some(tiny), 8).len(), 1);
    }

    #[test]
    fn quotas_follow_the_counts_add_up_to_the_limit_and_never_exceed_a_count() {
        let q = allocate(&[100, 300, 0, 600], 100);
        let takes: Vec<u64> = q.iter().map(|q| q.take).collect();
        assert_eq!(takes, vec![10, 30, 0, 60]);
        let q = allocate(&[1, 1, 1], 2);
        // Equal remainders go to the earlier strata.
        assert_eq!(q.iter().map(|q| q.take).collect::<Vec<_>>(), vec![1, 1, 0]);
        let q = allocate(&[7, 5_000, 3], 1_000);
        assert_eq!(q.iter().map(|q| q.take).sum::<u64>(), 1_000);
        assert!(q.iter().all(|q| q.take <= q.count));
    }

    #[test]
    fn a_window_within_the_limit_is_taken_whole() {
        let q = allocate(&[3, 4], 10);
        assert_eq!(q, vec![Quota { count: 3, take: 3 }, Quota { count: 4, take: 4 }]);
    }

    #[test]
    fn key_ranges_wrap_around_the_circle() {
        assert_eq!(key_ranges(0.25, 0.5), vec![(0.25, 0.75)]);
        let wrapped = key_ranges(0.75, 0.5);
        assert_eq!(wrapped.len(), 2);
        assert_eq!(wrapped[0], (0.75, 1.0));
        assert!((wrapped[1].1 - 0.25).abs() < 1e-12);
        assert_eq!(key_ranges(0.3, 1.0), vec![(0.0, 1.0)]);
        // A key in a wrapped range is within the width after the offset.
        assert!(rotated(0.1, 0.75) < 0.5);
        assert!(rotated(0.8, 0.75) < 0.5);
        assert!(rotated(0.5, 0.75) >= 0.5);
    }

    #[test]
    fn widths_start_above_the_expected_share_and_grow_until_one() {
        let w = first_width(2_500, 1_000_000);
        assert!(w > 0.0025 && w < 0.0027, "{w}");
        assert_eq!(first_width(10, 5), 1.0);
        let mut width = 0.001;
        for _ in 0..40 {
            width = next_width(width, 100, 0);
        }
        assert_eq!(width, 1.0);
        assert!(next_width(0.01, 100, 90) > 0.01);
    }

    #[test]
    fn sample_keys_of_ids_are_uniform() {
        let mut bins = [0u32; 10];
        for id in 0..100_000u64 {
            let k = sample_key_of_id(id);
            assert!(valid_key(k));
            bins[(k * 10.0) as usize] += 1;
        }
        assert!(bins.iter().all(|&b| (9_500..10_500).contains(&b)), "{bins:?}");
    }

    #[test]
    fn bottom_k_does_not_depend_on_the_order_of_the_candidates() {
        let candidates: Vec<(f64, IdKey)> = (0..1_000u64)
            .map(|id| (rotated(sample_key_of_id(id), key_offset(9)), IdKey::Num(id)))
            .collect();
        let pick = |c: &[(f64, IdKey)]| -> Vec<IdKey> {
            bottom_k(c, 50).into_iter().map(|i| c[i].1.clone()).collect()
        };
        let forward = pick(&candidates);
        let mut reversed = candidates.clone();
        reversed.reverse();
        assert_eq!(forward, pick(&reversed));
        assert_eq!(forward.len(), 50);
        // Equal keys are ordered by id.
        let tied = vec![(0.5, IdKey::Num(9)), (0.5, IdKey::Num(2)), (0.7, IdKey::Num(1))];
        assert_eq!(bottom_k(&tied, 2), vec![1, 0]);
        assert_eq!(bottom_k(&tied, 0), Vec::<usize>::new());
        assert_eq!(bottom_k(&tied, 9).len(), 3);
    }

    #[test]
    fn another_seed_starts_elsewhere_on_the_circle() {
        assert_ne!(key_offset(1), key_offset(2));
        assert!(valid_key(key_offset(42)));
        assert!(!valid_key(1.0) && !valid_key(-0.1) && !valid_key(f64::NAN));
    }

    #[test]
    fn pages_hold_about_one_mebibyte_of_vectors() {
        assert_eq!(page_size(768, None), 334);
        assert_eq!(page_size(128, None), 1_820);
        assert_eq!(page_size(4, None), 8_192);
        assert_eq!(page_size(768, Some(512)), 512);
    }
}
