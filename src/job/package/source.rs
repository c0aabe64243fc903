//! The points a packaging Job reads and the seeded, order-independent sample it takes. The trait is the
//! seam to the data store (Qdrant in production, a vector in tests); sampling itself is pure.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A point id as Qdrant knows it: an unsigned integer or a UUID.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(untagged)]
pub enum PointId {
    Num(u64),
    Uuid(String),
}

impl std::fmt::Display for PointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => f.write_str(u),
        }
    }
}

/// One point of the comparison window, as packaged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Point {
    pub id: PointId,
    /// The point's timestamp (RFC 3339), when the payload field could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The full payload.
    pub payload: serde_json::Value,
    /// The (named) vector.
    pub vector: Vec<f32>,
}

/// `manifest.json`'s `sampling.method` for [`hash_bottom_k`].
pub const HASH_BOTTOM_K: &str = "seeded-hash-bottom-k";

/// The ids drawn from the comparison window.
#[derive(Clone, Debug, PartialEq)]
pub struct IdDraw {
    /// Sorted by id (the order of the archive), no duplicates.
    pub ids: Vec<PointId>,
    /// Points in the window.
    pub available: u64,
    /// Points read from the store to draw the sample.
    pub read: u64,
    /// How they were drawn (`manifest.json`'s `sampling.method`).
    pub method: &'static str,
}

/// Where the points come from.
pub trait PointSource: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Calls `visit` with the id of every point in the comparison window (any order), returns how many.
    fn scan_ids(
        &self,
        visit: &mut (dyn FnMut(PointId) + Send),
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;

    /// The points with these ids (payload and vector), in any order; unknown ids are left out.
    fn fetch(&self, ids: &[PointId]) -> impl Future<Output = Result<Vec<Point>, Self::Error>> + Send;

    /// Draws `k` ids of the window. By default [`hash_bottom_k`] over every id.
    fn sample(&self, k: usize, seed: u64) -> impl Future<Output = Result<IdDraw, Self::Error>> + Send {
        hash_bottom_k(self, k, seed)
    }
}

/// Scans every id of the window and keeps the `k` with the smallest seeded hash: reproducible and
/// independent of the scan order; reads every id.
pub async fn hash_bottom_k<S: PointSource + ?Sized>(
    source: &S,
    k: usize,
    seed: u64,
) -> Result<IdDraw, S::Error> {
    let mut sampler = Sampler::new(seed, k);
    let available = source.scan_ids(&mut |id: PointId| sampler.offer(id)).await?;
    Ok(IdDraw {
        ids: sampler.finish(),
        available,
        read: available,
        method: HASH_BOTTOM_K,
    })
}

/// The sampling key of a point: a seeded hash of its id. The sample is the `k` smallest keys, so it does
/// not depend on the order the store returns points in, and a larger `k` keeps the smaller sample.
pub fn sample_key(seed: u64, id: &PointId) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    match id {
        PointId::Num(n) => {
            hasher.update([0u8]);
            hasher.update(n.to_le_bytes());
        }
        PointId::Uuid(u) => {
            hasher.update([1u8]);
            hasher.update(u.to_ascii_lowercase().as_bytes());
        }
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

#[derive(PartialEq, Eq)]
struct Keyed(u64, PointId);

impl Ord for Keyed {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0).then_with(|| self.1.cmp(&other.1))
    }
}

impl PartialOrd for Keyed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Bounded-memory seeded sampler: keeps the `k` ids with the smallest [`sample_key`].
pub struct Sampler {
    seed: u64,
    k: usize,
    heap: BinaryHeap<Keyed>,
    seen: u64,
}

impl Sampler {
    pub fn new(seed: u64, k: usize) -> Self {
        Self {
            seed,
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 20) + 1),
            seen: 0,
        }
    }

    pub fn offer(&mut self, id: PointId) {
        self.seen += 1;
        if self.k == 0 {
            return;
        }
        let keyed = Keyed(sample_key(self.seed, &id), id);
        if self.heap.len() < self.k {
            self.heap.push(keyed);
        } else if self.heap.peek().is_some_and(|top| keyed < *top) {
            self.heap.pop();
            self.heap.push(keyed);
        }
    }

    /// Ids offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The sample, sorted by id (the order of the archive).
    pub fn finish(self) -> Vec<PointId> {
        let mut ids: Vec<PointId> = self.heap.into_iter().map(|k| k.1).collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// An in-memory source (tests, benchmarks, local files).
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    pub points: Vec<Point>,
}

/// A [`MemorySource`] never fails.
#[derive(Debug, thiserror::Error)]
#[error("in-memory source error")]
pub struct MemorySourceError;

impl PointSource for MemorySource {
    type Error = MemorySourceError;

    async fn scan_ids(&self, visit: &mut (dyn FnMut(PointId) + Send)) -> Result<u64, Self::Error> {
        for point in &self.points {
            visit(point.id.clone());
        }
        Ok(self.points.len() as u64)
    }

    async fn fetch(&self, ids: &[PointId]) -> Result<Vec<Point>, Self::Error> {
        let wanted: std::collections::HashSet<&PointId> = ids.iter().collect();
        Ok(self
            .points
            .iter()
            .filter(|p| wanted.contains(&p.id))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<PointId> {
        (0..n).map(PointId::Num).collect()
    }

    #[test]
    fn the_sample_does_not_depend_on_scan_order() {
        let mut forward = Sampler::new(42, 10);
        ids(1000).into_iter().for_each(|id| forward.offer(id));
        let mut backward = Sampler::new(42, 10);
        ids(1000).into_iter().rev().for_each(|id| backward.offer(id));
        assert_eq!(forward.finish(), backward.finish());
    }

    #[test]
    fn another_seed_draws_another_sample() {
        let mut a = Sampler::new(1, 10);
        let mut b = Sampler::new(2, 10);
        for id in ids(1000) {
            a.offer(id.clone());
            b.offer(id);
        }
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn a_window_smaller_than_the_sample_is_taken_whole_and_sorted() {
        let mut s = Sampler::new(7, 100);
        for id in ids(5).into_iter().rev() {
            s.offer(id);
        }
        assert_eq!(s.seen(), 5);
        assert_eq!(s.finish(), ids(5));
    }

    #[test]
    fn a_larger_sample_contains_the_smaller_one() {
        let mut small = Sampler::new(9, 20);
        let mut large = Sampler::new(9, 200);
        for id in ids(5000) {
            small.offer(id.clone());
            large.offer(id);
        }
        let large = large.finish();
        assert!(small.finish().iter().all(|id| large.contains(id)));
    }

    #[tokio::test]
    async fn the_default_draw_scans_every_id_and_keeps_the_smallest_hashes() {
        let source = MemorySource {
            points: (0..300u64)
                .map(|i| Point {
                    id: PointId::Num(i),
                    timestamp: None,
                    payload: serde_json::json!({}),
                    vector: vec![i as f32],
                })
                .collect(),
        };
        let draw = source.sample(25, 4).await.unwrap();
        assert_eq!((draw.available, draw.read, draw.ids.len()), (300, 300, 25));
        assert_eq!(draw.method, HASH_BOTTOM_K);
        let mut sampler = Sampler::new(4, 25);
        (0..300u64).rev().for_each(|i| sampler.offer(PointId::Num(i)));
        assert_eq!(draw.ids, sampler.finish());
    }

    #[test]
    fn uuid_ids_serialize_as_strings_and_numbers_as_numbers() {
        assert_eq!(serde_json::to_string(&PointId::Num(3)).unwrap(), "3");
        assert_eq!(
            serde_json::to_string(&PointId::Uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c26".into())).unwrap(),
            "\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\""
        );
    }
}
