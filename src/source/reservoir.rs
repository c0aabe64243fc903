//! Seeded reservoir sampling of fixed-length vectors (Vitter's algorithm R). Pure, no I/O.
//!
//! Memory is `capacity × dimension` floats however many vectors are offered; the sample depends only on
//! the seed, the stream and the order of the offered vectors.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A uniform sample without replacement of at most `capacity` vectors.
#[derive(Debug)]
pub struct Reservoir {
    capacity: usize,
    dimension: usize,
    rng: ChaCha8Rng,
    seen: u64,
    data: Vec<f32>,
    scores: Vec<Option<f32>>,
    /// Per-row metadata (point id and payload values), kept only when offered.
    meta: Vec<PointMeta>,
}

/// What a sampled row carries besides its vector: the point id and the payload values read for it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointMeta {
    pub id: String,
    /// One entry per requested payload field (`None`: missing or not a keyword/integer/bool value).
    pub fields: Vec<Option<String>>,
}

impl Reservoir {
    /// `expected` (e.g. the counted window size) only sizes the first allocation.
    pub fn new(capacity: usize, dimension: usize, seed: u64, stream: u64, expected: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let rows = capacity.min(usize::try_from(expected).unwrap_or(usize::MAX));
        Self {
            capacity,
            dimension,
            rng,
            seen: 0,
            data: Vec::with_capacity(rows.saturating_mul(dimension)),
            scores: Vec::with_capacity(rows),
            meta: Vec::new(),
        }
    }

    /// Offers one vector (of exactly `dimension` values) and its optional score.
    pub fn offer(&mut self, vector: &[f32], score: Option<f32>) {
        self.offer_with(vector, score, None);
    }

    /// [`Reservoir::offer`] with the row's metadata (offer it for every row or for none).
    pub fn offer_with(&mut self, vector: &[f32], score: Option<f32>, meta: Option<PointMeta>) {
        debug_assert_eq!(vector.len(), self.dimension);
        let index = self.seen;
        self.seen += 1;
        if self.scores.len() < self.capacity {
            self.data.extend_from_slice(vector);
            self.scores.push(score);
            if let Some(meta) = meta {
                self.meta.push(meta);
            }
            return;
        }
        if self.capacity == 0 {
            return;
        }
        let slot = self.rng.random_range(0..=index);
        if let Ok(slot) = usize::try_from(slot)
            && slot < self.capacity
        {
            self.data[slot * self.dimension..(slot + 1) * self.dimension].copy_from_slice(vector);
            self.scores[slot] = score;
            if let (Some(meta), Some(kept)) = (meta, self.meta.get_mut(slot)) {
                *kept = meta;
            }
        }
    }

    /// Vectors offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The sample as `[rows, dimension]` and the scores of its rows.
    pub fn finish(self) -> (Array2<f32>, Vec<Option<f32>>) {
        let (array, scores, _) = self.finish_with_meta();
        (array, scores)
    }

    /// [`Reservoir::finish`] and the metadata of the rows (empty when none was offered).
    pub fn finish_with_meta(self) -> (Array2<f32>, Vec<Option<f32>>, Vec<PointMeta>) {
        let rows = self.scores.len();
        let array = Array2::from_shape_vec((rows, self.dimension), self.data)
            .unwrap_or_else(|_| Array2::zeros((0, self.dimension)));
        (array, self.scores, self.meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize, capacity: usize, seed: u64) -> Vec<f32> {
        let mut r = Reservoir::new(capacity, 1, seed, 1, n as u64);
        for i in 0..n {
            r.offer(&[i as f32], None);
        }
        r.finish().0.iter().copied().collect()
    }

    #[test]
    fn keeps_every_vector_in_order_when_under_capacity() {
        assert_eq!(sample(5, 10, 1), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn the_same_seed_gives_the_same_sample_and_another_seed_another() {
        let a = sample(10_000, 100, 7);
        assert_eq!(a.len(), 100);
        assert_eq!(a, sample(10_000, 100, 7));
        assert_ne!(a, sample(10_000, 100, 8));
    }

    #[test]
    fn a_sample_has_no_duplicates_and_covers_the_whole_stream() {
        let mut a = sample(10_000, 500, 3);
        a.sort_by(f32::total_cmp);
        a.dedup();
        assert_eq!(a.len(), 500);
        // Uniform: about half the sample comes from the second half of the stream.
        let late = a.iter().filter(|v| **v >= 5_000.0).count();
        assert!((180..=320).contains(&late), "late = {late}");
    }

    #[test]
    fn memory_is_bounded_by_the_capacity() {
        let mut r = Reservoir::new(10, 4, 1, 1, 1_000_000);
        for i in 0..100_000 {
            r.offer(&[i as f32; 4], Some(0.5));
        }
        assert_eq!(r.seen(), 100_000);
        assert!(r.data.capacity() <= 40);
        let (a, s) = r.finish();
        assert_eq!(a.dim(), (10, 4));
        assert_eq!(s.len(), 10);
    }

    #[test]
    fn metadata_stays_with_its_vector_through_replacements() {
        let mut r = Reservoir::new(5, 1, 9, 1, 100);
        for i in 0..100 {
            let meta = PointMeta {
                id: i.to_string(),
                fields: vec![Some(format!("v{i}"))],
            };
            r.offer_with(&[i as f32], None, Some(meta));
        }
        let (rows, _, meta) = r.finish_with_meta();
        assert_eq!(meta.len(), 5);
        for (row, m) in rows.column(0).iter().zip(&meta) {
            assert_eq!(m.id, (*row as usize).to_string());
            assert_eq!(m.fields, vec![Some(format!("v{}", *row as usize))]);
        }
    }
}
