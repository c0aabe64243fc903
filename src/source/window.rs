//! Reads one window from Qdrant: exact counts (the window, its unreadable timestamps, each time stratum),
//! quotas in proportion to the counts, then the strata read concurrently (bounded), each straight into
//! its rows of the sample. Does network I/O through [`QdrantSource`]; the arithmetic is in
//! [`super::sampling`].
//!
//! Per stratum: read whole (the window fits its limit), Qdrant's random-sample query with the quota as
//! the limit, a key-range count and scroll keeping the smallest sample keys, or a scroll into a seeded
//! reservoir. Memory: the sample (`limit × dimension` floats, allocated once) plus, per stratum read at
//! the same time, one page (whole, reservoir), one answer (random) or about the quota (sample key).

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt, stream};
use ndarray::{Array1, Array2};
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    Condition, Filter, PointId, Range, RetrievedPoint, ScoredPoint, Value, VectorsOutput,
};

use super::filter::{unreadable_timestamp_filter, window_filter};
use super::qdrant::{QdrantSource, Selection, label, number, point_label, point_vector};
use super::reservoir::{PointMeta, Reservoir};
use super::sampling::{
    IdKey, Quota, allocate, bottom_k, first_width, key_offset, key_ranges, next_width, page_size, rotated,
    strata, stratum_stream, valid_key,
};
use super::{Sampling, SourceError, TimeRange, WindowQuery, WindowSample, format_name};
use crate::api::v1alpha1::SamplingMethod;

/// One stratum of a planned window read.
#[derive(Clone, Debug)]
pub(crate) struct StratumPlan {
    /// The window's filter with the stratum's time range.
    pub filter: Filter,
    pub quota: Quota,
}

/// What a window read will do, from the counts.
#[derive(Clone, Debug)]
pub(crate) struct WindowPlan {
    pub dimension: usize,
    /// Points in the window (the strata's exact counts added up).
    pub available: u64,
    pub skipped: u64,
    pub method: SamplingMethod,
    /// The sampling in effect (a sample-key window with unkeyed points falls back to the reservoir).
    pub sampling: Sampling,
    pub strata: Vec<StratumPlan>,
}

impl WindowPlan {
    fn rows(&self) -> usize {
        self.strata
            .iter()
            .map(|s| usize::try_from(s.quota.take).unwrap_or(usize::MAX))
            .sum()
    }
}

/// A point as a scroll or a query returns it.
#[derive(Clone, Copy)]
struct Got<'a> {
    id: Option<&'a PointId>,
    payload: &'a HashMap<String, Value>,
    vectors: Option<&'a VectorsOutput>,
}

impl<'a> From<&'a RetrievedPoint> for Got<'a> {
    fn from(p: &'a RetrievedPoint) -> Self {
        Got {
            id: p.id.as_ref(),
            payload: &p.payload,
            vectors: p.vectors.as_ref(),
        }
    }
}

impl<'a> From<&'a ScoredPoint> for Got<'a> {
    fn from(p: &'a ScoredPoint) -> Self {
        Got {
            id: p.id.as_ref(),
            payload: &p.payload,
            vectors: p.vectors.as_ref(),
        }
    }
}

/// The rows of the sample one stratum fills.
struct Region<'a> {
    data: &'a mut [f32],
    scores: &'a mut [Option<f32>],
    /// Empty unless the schema reads points.
    meta: &'a mut [PointMeta],
    filled: usize,
}

/// What reading one stratum did.
struct StratumRead {
    index: usize,
    filled: usize,
    read: u64,
}

/// Ids sampled from a window (for the packaging Job).
#[derive(Clone, Debug, PartialEq)]
pub struct IdSample {
    pub ids: Vec<PointId>,
    pub available: u64,
    pub read: u64,
    pub method: SamplingMethod,
}

fn id_key(id: Option<&PointId>) -> IdKey {
    match id.and_then(|id| id.point_id_options.as_ref()) {
        Some(PointIdOptions::Num(n)) => IdKey::Num(*n),
        Some(PointIdOptions::Uuid(u)) => IdKey::Uuid(u.to_ascii_lowercase()),
        None => IdKey::Uuid(String::new()),
    }
}

/// Whether no component is NaN or infinite: an OR of the exponent-all-ones test, without a branch per
/// component (it vectorizes; `any(!is_finite)` did not).
fn all_finite(vector: &[f32]) -> bool {
    const EXPONENT: u32 = 0x7f80_0000;
    vector
        .iter()
        .fold(0u32, |acc, v| acc | u32::from(v.to_bits() & EXPONENT == EXPONENT))
        == 0
}

/// A payload number at full precision.
fn number_f64(value: Option<&Value>) -> Option<f64> {
    match value?.kind.as_ref()? {
        Kind::DoubleValue(d) => Some(*d),
        Kind::IntegerValue(i) => Some(*i as f64),
        _ => None,
    }
}

/// `field` within `width` after `offset` on the circle of keys.
fn key_condition(field: &str, offset: f64, width: f64) -> Condition {
    let range = |(gte, lt): (f64, f64)| {
        Condition::range(
            field,
            Range {
                gte: Some(gte),
                lt: Some(lt),
                ..Default::default()
            },
        )
    };
    let mut ranges: Vec<Condition> = key_ranges(offset, width).into_iter().map(range).collect();
    if ranges.len() == 1 {
        ranges.remove(0)
    } else {
        Condition::from(Filter {
            should: ranges,
            ..Default::default()
        })
    }
}

fn with_condition(filter: &Filter, condition: Condition) -> Filter {
    let mut filter = filter.clone();
    filter.must.push(condition);
    filter
}

impl QdrantSource {
    /// Counts the window and its strata and decides how each stratum is read.
    pub(crate) async fn plan_window(&self, query: &WindowQuery) -> Result<WindowPlan, SourceError> {
        let collection = query.collection.as_str();
        let shape = self.shape(collection).await?;
        let schema = self.schema();
        let timestamp = |range: TimeRange| (schema.timestamp_field.as_str(), schema.timestamp_format, range);
        let filter = window_filter(query.filter.as_ref(), query.range.map(timestamp))?;
        let available = self.count(collection, filter.clone()).await?;

        let skipped = if query.range.is_some() {
            let unreadable = unreadable_timestamp_filter(
                query.filter.as_ref(),
                &schema.timestamp_field,
                schema.timestamp_format,
            )?;
            self.count(collection, unreadable).await?
        } else {
            0
        };
        if available == 0 && skipped > 0 {
            let scope = self
                .count(collection, window_filter(query.filter.as_ref(), None)?)
                .await?;
            if scope == skipped {
                return Err(SourceError::MissingTimestamp {
                    collection: collection.to_string(),
                    field: schema.timestamp_field.clone(),
                    format: format_name(schema.timestamp_format).to_string(),
                    points: scope,
                });
            }
        }
        let mut plan = WindowPlan {
            dimension: shape.dimension,
            available,
            skipped,
            method: SamplingMethod::All,
            sampling: query.sampling.clone(),
            strata: Vec::new(),
        };
        if available == 0 {
            return Ok(plan);
        }

        let ranges = strata(query.range, query.strata);
        let filters = ranges
            .iter()
            .map(|range| window_filter(query.filter.as_ref(), range.map(timestamp)))
            .collect::<Result<Vec<Filter>, SourceError>>()?;
        let counts: Vec<u64> = if filters.len() == 1 {
            vec![available]
        } else {
            // Futures collected first: a lazy `map` in the stream would make this future !Send.
            let counts: Vec<_> = filters
                .iter()
                .map(|f| self.count(collection, f.clone()))
                .collect();
            stream::iter(counts)
                .buffered(self.config().concurrency.max(1))
                .try_collect()
                .await?
        };
        plan.available = counts.iter().sum();
        let limit = u64::try_from(query.max_points).unwrap_or(u64::MAX);
        if plan.available > limit {
            if let Sampling::SampleKey { field } = &query.sampling {
                let keyed = with_condition(&filter, key_condition(field, 0.0, 1.0));
                let keyed = self.count(collection, keyed).await?;
                if keyed < plan.available {
                    tracing::warn!(
                        collection,
                        field = field.as_str(),
                        unkeyed = plan.available - keyed,
                        "points of the window have no sample key in [0, 1); reading it with the reservoir"
                    );
                    plan.sampling = Sampling::Reservoir;
                }
            }
            plan.method = plan.sampling.method();
        }
        plan.strata = filters
            .into_iter()
            .zip(allocate(&counts, limit))
            .map(|(filter, quota)| StratumPlan { filter, quota })
            .collect();
        Ok(plan)
    }

    /// Reads and samples one window.
    pub async fn read_window(&self, query: &WindowQuery) -> Result<WindowSample, SourceError> {
        let plan = self.plan_window(query).await?;
        let dim = plan.dimension;
        let rows = plan.rows();
        // Zeroed pages are mapped lazily: memory grows as rows are written.
        let mut data = vec![0f32; rows.saturating_mul(dim)];
        let mut scores: Vec<Option<f32>> = vec![None; rows];
        let read_points = self.schema().read_points;
        let mut meta: Vec<PointMeta> = vec![PointMeta::default(); if read_points { rows } else { 0 }];
        let mut regions = Vec::with_capacity(plan.strata.len());
        {
            let (mut d, mut s, mut m) = (&mut data[..], &mut scores[..], &mut meta[..]);
            for stratum in &plan.strata {
                let take = usize::try_from(stratum.quota.take).unwrap_or(usize::MAX);
                let (region_data, rest_data) = d.split_at_mut(take * dim);
                let (region_scores, rest_scores) = s.split_at_mut(take);
                let (region_meta, rest_meta) = m.split_at_mut(if read_points { take } else { 0 });
                regions.push(Region {
                    data: region_data,
                    scores: region_scores,
                    meta: region_meta,
                    filled: 0,
                });
                (d, s, m) = (rest_data, rest_scores, rest_meta);
            }
        }
        let reads: Vec<_> = plan
            .strata
            .iter()
            .zip(regions)
            .enumerate()
            .map(|(index, (stratum, region))| self.read_stratum(query, &plan, index, stratum, region))
            .collect();
        let reads: Vec<StratumRead> = stream::iter(reads)
            .buffer_unordered(self.config().concurrency.max(1))
            .try_collect()
            .await?;

        // Close the gaps of strata that returned fewer points than counted (points deleted meanwhile).
        let mut filled = vec![0usize; plan.strata.len()];
        let mut scanned = 0u64;
        for read in &reads {
            filled[read.index] = read.filled;
            scanned += read.read;
        }
        let (mut from, mut to) = (0usize, 0usize);
        for (stratum, &n) in plan.strata.iter().zip(&filled) {
            if from != to {
                data.copy_within(from * dim..(from + n) * dim, to * dim);
                scores.copy_within(from..from + n, to);
                if read_points {
                    for i in 0..n {
                        meta.swap(to + i, from + i);
                    }
                }
            }
            from += usize::try_from(stratum.quota.take).unwrap_or(usize::MAX);
            to += n;
        }
        data.truncate(to * dim);
        scores.truncate(to);
        meta.truncate(if read_points { to } else { 0 });

        let schema = self.schema();
        let missing_confidence = if schema.confidence_field.is_some() {
            scores.iter().filter(|s| s.is_none()).count() as u64
        } else {
            0
        };
        let present: Vec<f32> = scores.into_iter().flatten().collect();
        let scores =
            (schema.confidence_field.is_some() && !present.is_empty()).then(|| Array1::from_vec(present));
        let embeddings = Array2::from_shape_vec((to, dim), data).unwrap_or_else(|_| Array2::zeros((0, dim)));
        Ok(WindowSample {
            embeddings,
            scores,
            available: plan.available,
            skipped: plan.skipped,
            missing_confidence,
            dimension: dim,
            scanned,
            method: plan.method,
            points: meta,
        })
    }

    /// Samples the ids of a window (no vectors, no payload but the sample key). `None` when the window
    /// is read whole or by the reservoir: the caller scans the ids itself.
    pub async fn sample_ids(&self, query: &WindowQuery) -> Result<Option<IdSample>, SourceError> {
        let plan = self.plan_window(query).await?;
        if matches!(plan.method, SamplingMethod::All | SamplingMethod::Reservoir) {
            return Ok(None);
        }
        let parts: Vec<_> = plan
            .strata
            .iter()
            .map(|stratum| self.sample_stratum(query, &plan, stratum, false))
            .collect();
        let parts: Vec<(Vec<ScoredPoint>, u64)> = stream::iter(parts)
            .buffered(self.config().concurrency.max(1))
            .try_collect()
            .await?;
        let parts: Vec<(Vec<PointId>, u64)> = parts
            .into_iter()
            .map(|(points, read)| (points.into_iter().filter_map(|p| p.id).collect(), read))
            .collect();
        let read = parts.iter().map(|(_, r)| r).sum();
        Ok(Some(IdSample {
            ids: parts.into_iter().flat_map(|(ids, _)| ids).collect(),
            available: plan.available,
            read,
            method: plan.method,
        }))
    }

    /// Fills one stratum's rows.
    async fn read_stratum(
        &self,
        query: &WindowQuery,
        plan: &WindowPlan,
        index: usize,
        stratum: &StratumPlan,
        mut region: Region<'_>,
    ) -> Result<StratumRead, SourceError> {
        let collection = query.collection.as_str();
        let dim = plan.dimension;
        let take = usize::try_from(stratum.quota.take).unwrap_or(usize::MAX);
        if take == 0 {
            return Ok(StratumRead {
                index,
                filled: 0,
                read: 0,
            });
        }
        let read = match (&plan.method, &plan.sampling) {
            (SamplingMethod::All, _) => {
                let selection = self.selection(&[]);
                self.scroll_all(collection, &stratum.filter, &selection, dim, |page| {
                    for point in &page {
                        if region.filled == take {
                            // Points written after the count: not part of this read.
                            break;
                        }
                        self.put(collection, &mut region, point.into(), dim)?;
                    }
                    Ok(())
                })
                .await?
            }
            (_, Sampling::Reservoir) => {
                let mut reservoir = Reservoir::new(
                    take,
                    dim,
                    query.seed,
                    stratum_stream(query.stream, index),
                    stratum.quota.count,
                );
                let confidence = self.schema().confidence_field.clone();
                let read_points = self.schema().read_points;
                let selection = self.selection(&[]);
                let read = self
                    .scroll_all(collection, &stratum.filter, &selection, dim, |page| {
                        for point in &page {
                            let vector = self.checked_vector(collection, point.into(), dim)?;
                            let score = confidence
                                .as_deref()
                                .and_then(|field| point.payload.get(field))
                                .and_then(number);
                            let meta = read_points.then(|| self.point_meta(point.into()));
                            reservoir.offer_with(vector, score, meta);
                        }
                        Ok(())
                    })
                    .await?;
                let (sample, sample_scores, sample_meta) = reservoir.finish_with_meta();
                let n = sample.nrows().min(take);
                if let Some(values) = sample.as_slice() {
                    region.data[..n * dim].copy_from_slice(&values[..n * dim]);
                }
                region.scores[..n].copy_from_slice(&sample_scores[..n]);
                for (slot, m) in region.meta.iter_mut().zip(sample_meta) {
                    *slot = m;
                }
                region.filled = n;
                read
            }
            (_, Sampling::Random) | (_, Sampling::SampleKey { .. }) => {
                let (points, read) = self.sample_stratum(query, plan, stratum, true).await?;
                for point in points.iter().take(take) {
                    self.put(collection, &mut region, point.into(), dim)?;
                }
                read
            }
        };
        Ok(StratumRead {
            index,
            filled: region.filled,
            read,
        })
    }

    /// The sampled points of one stratum (random or sample-key) and how many points were read.
    async fn sample_stratum(
        &self,
        query: &WindowQuery,
        plan: &WindowPlan,
        stratum: &StratumPlan,
        with_vector: bool,
    ) -> Result<(Vec<ScoredPoint>, u64), SourceError> {
        let collection = query.collection.as_str();
        let take = stratum.quota.take;
        if take == 0 {
            return Ok((Vec::new(), 0));
        }
        match &plan.sampling {
            Sampling::SampleKey { field } => {
                let offset = key_offset(query.seed);
                let mut width = first_width(take, stratum.quota.count);
                let filter = loop {
                    let filter = with_condition(&stratum.filter, key_condition(field, offset, width));
                    if width >= 1.0 {
                        break filter;
                    }
                    let found = self.count(collection, filter.clone()).await?;
                    if found >= take {
                        break filter;
                    }
                    width = next_width(width, take, found);
                };
                let selection = if with_vector {
                    self.selection(&[field.as_str()])
                } else {
                    Selection::only(&[field.as_str()])
                };
                let mut points: Vec<RetrievedPoint> = Vec::new();
                let read = self
                    .scroll_all(collection, &filter, &selection, plan.dimension, |page| {
                        points.extend(page);
                        Ok(())
                    })
                    .await?;
                let candidates: Vec<(f64, IdKey)> = points
                    .iter()
                    .map(|p| {
                        let key = number_f64(p.payload.get(field.as_str()))
                            .filter(|k| valid_key(*k))
                            .map(|k| rotated(k, offset))
                            .unwrap_or(f64::INFINITY);
                        (key, id_key(p.id.as_ref()))
                    })
                    .collect();
                let keep = bottom_k(&candidates, usize::try_from(take).unwrap_or(usize::MAX));
                let mut slots: Vec<Option<RetrievedPoint>> = points.into_iter().map(Some).collect();
                let chosen = keep
                    .into_iter()
                    .filter_map(|i| slots[i].take())
                    .map(|p| ScoredPoint {
                        id: p.id,
                        payload: p.payload,
                        vectors: p.vectors,
                        ..Default::default()
                    })
                    .collect();
                Ok((chosen, read))
            }
            Sampling::Random | Sampling::Reservoir => {
                let selection = if with_vector {
                    self.selection(&[])
                } else {
                    Selection::only(&[])
                };
                let points = self
                    .sample_random(collection, &stratum.filter, take, &selection)
                    .await?;
                let read = points.len() as u64;
                Ok((points, read))
            }
        }
    }

    /// Scrolls every point of `filter`, a page at a time; returns how many were read.
    async fn scroll_all(
        &self,
        collection: &str,
        filter: &Filter,
        selection: &Selection,
        dimension: usize,
        mut visit: impl FnMut(Vec<RetrievedPoint>) -> Result<(), SourceError>,
    ) -> Result<u64, SourceError> {
        let limit = page_size(dimension, self.config().page_size);
        let mut offset: Option<PointId> = None;
        let mut read = 0u64;
        loop {
            let page = self
                .scroll_page(collection, filter, offset.take(), limit, selection)
                .await?;
            let empty = page.result.is_empty();
            read += page.result.len() as u64;
            visit(page.result)?;
            match page.next_page_offset {
                Some(next) if !empty => offset = Some(next),
                _ => return Ok(read),
            }
        }
    }

    /// The point's vector, checked: present, of the collection's dimension, finite.
    fn checked_vector<'a>(
        &self,
        collection: &str,
        point: Got<'a>,
        dimension: usize,
    ) -> Result<&'a [f32], SourceError> {
        let vector = point_vector(point.vectors, self.schema().vector_name.as_deref()).ok_or_else(|| {
            SourceError::DimensionMismatch {
                collection: collection.to_string(),
                point: point_label(point.id),
                expected: dimension,
                found: 0,
            }
        })?;
        if vector.len() != dimension {
            return Err(SourceError::DimensionMismatch {
                collection: collection.to_string(),
                point: point_label(point.id),
                expected: dimension,
                found: vector.len(),
            });
        }
        if !all_finite(vector) {
            return Err(SourceError::InvalidVector {
                collection: collection.to_string(),
                point: point_label(point.id),
            });
        }
        Ok(vector)
    }

    /// The point's id and explained payload fields.
    fn point_meta(&self, point: Got<'_>) -> PointMeta {
        PointMeta {
            id: point_label(point.id),
            fields: self
                .schema()
                .payload_fields
                .iter()
                .map(|field| point.payload.get(field).and_then(label))
                .collect(),
        }
    }

    /// Writes a checked point into the region's next row.
    fn put(
        &self,
        collection: &str,
        region: &mut Region<'_>,
        point: Got<'_>,
        dimension: usize,
    ) -> Result<(), SourceError> {
        let row = region.filled;
        if row >= region.scores.len() {
            return Ok(());
        }
        let payload = point.payload;
        if let Some(slot) = region.meta.get_mut(row) {
            *slot = self.point_meta(point);
        }
        let vector = self.checked_vector(collection, point, dimension)?;
        region.data[row * dimension..(row + 1) * dimension].copy_from_slice(vector);
        region.scores[row] = self
            .schema()
            .confidence_field
            .as_deref()
            .and_then(|field| payload.get(field))
            .and_then(number);
        region.filled += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use qdrant_client::qdrant::condition::ConditionOneOf;

    use super::*;

    #[test]
    fn a_wrapping_key_span_is_a_nested_should_of_two_ranges() {
        let c = key_condition("sample_key", 0.9, 0.2);
        let Some(ConditionOneOf::Filter(f)) = c.condition_one_of else {
            panic!("not a nested filter");
        };
        assert_eq!(f.should.len(), 2);
        let c = key_condition("sample_key", 0.1, 0.2);
        assert!(matches!(c.condition_one_of, Some(ConditionOneOf::Field(_))));
    }

    #[test]
    fn nan_and_infinite_components_are_found_anywhere() {
        let mut v = vec![0.5f32; 768];
        assert!(all_finite(&v));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            v[767] = bad;
            assert!(!all_finite(&v));
            v[767] = f32::MAX;
        }
        assert!(all_finite(&v));
        assert!(all_finite(&[-0.0, f32::MIN_POSITIVE, 1e-45]));
    }

    #[test]
    fn keys_are_read_at_full_precision_from_doubles_and_integers() {
        let v = |kind| Value { kind: Some(kind) };
        assert_eq!(
            number_f64(Some(&v(Kind::DoubleValue(0.123_456_789_012)))),
            Some(0.123_456_789_012)
        );
        assert_eq!(number_f64(Some(&v(Kind::IntegerValue(0)))), Some(0.0));
        assert_eq!(number_f64(Some(&v(Kind::StringValue("0.5".into())))), None);
        assert_eq!(number_f64(None), None);
    }
}
