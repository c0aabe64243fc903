//! What changed and where, as a check reports it and a DriftEvent keeps it: the top slices, the regions
//! whose share changed, and example points with their display fields. Bounded in size (see the MAX_
//! constants) so it fits a Job's termination message and an event's status. Pure data, no I/O.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most slices kept (the most telling first).
pub const MAX_SLICES: usize = 5;
/// Most regions kept (largest share change first).
pub const MAX_REGIONS: usize = 3;
/// Most example points per slice or region.
pub const MAX_EXAMPLES: usize = 3;
/// Most display fields per example point (spec.explain.displayFields).
pub const MAX_DISPLAY_FIELDS: usize = 2;
/// Most characters of a slice value, point id or display value.
pub const MAX_TEXT: usize = 256;

/// The explanation of one check.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    /// Top slices: drifted ones first (smallest adjusted p-value), then appeared and vanished ones, then
    /// the largest share changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub slices: Vec<SliceSummary>,
    /// Slices with enough points in both windows to be tested (the Benjamini–Hochberg family size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices_tested: Option<i64>,
    /// Regions of the embedding space (k-means clusters of the pooled points in principal components),
    /// largest share change first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub regions: Vec<RegionSummary>,
    /// Seconds the explanation took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Whether items, examples or display fields were left out to fit the size limit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// One value of a slice field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SliceSummary {
    /// The payload field.
    #[schemars(length(max = 256))]
    pub field: String,
    /// Its value.
    #[schemars(length(max = 256))]
    pub value: String,
    /// drifted, unchanged, appeared (comparison only), vanished (reference only) or untested (too few
    /// points in a window).
    pub status: String,
    /// Points of the slice among the tested points: [reference, comparison].
    pub counts: [i64; 2],
    /// Share of each window's tested points: [reference, comparison].
    pub shares: [f64; 2],
    /// The slice's own permutation p-value (sliced Wasserstein on its points), when tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg adjusted over every tested slice; drifted when at most the monitor's alpha.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<f64>,
    /// Comparison points of the slice least like the reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub examples: Vec<ExamplePoint>,
}

/// One region (cluster) of the embedding space.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionSummary {
    /// The cluster's index in this check.
    pub region: i64,
    /// new (almost only in the comparison), grown, shrunk or vanished.
    pub kind: String,
    /// Points of the region: [reference, comparison].
    pub counts: [i64; 2],
    /// Share of each window: [reference, comparison].
    pub shares: [f64; 2],
    /// Comparison points of the region least like the reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub examples: Vec<ExamplePoint>,
}

/// A point of the comparison window for the reviewer to open.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamplePoint {
    /// The Qdrant point id.
    #[schemars(length(max = 256))]
    pub id: String,
    /// The monitor's display fields (spec.explain.displayFields) of the point.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// `text` cut to at most [`MAX_TEXT`] characters.
pub fn bounded_text(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

impl Explanation {
    /// The explanation within every bound (item counts, examples, text lengths, display fields per
    /// point); `truncated` is set when something was cut.
    pub fn bounded(mut self, display_fields: usize) -> Explanation {
        let before = self.clone();
        self.slices.truncate(MAX_SLICES);
        self.regions.truncate(MAX_REGIONS);
        let bound_examples = |examples: &mut Vec<ExamplePoint>| {
            examples.truncate(MAX_EXAMPLES);
            for e in examples.iter_mut() {
                e.id = bounded_text(&e.id);
                while e.fields.len() > display_fields {
                    e.fields.pop_last();
                }
                for v in e.fields.values_mut() {
                    *v = bounded_text(v);
                }
            }
        };
        for s in &mut self.slices {
            s.field = bounded_text(&s.field);
            s.value = bounded_text(&s.value);
            bound_examples(&mut s.examples);
        }
        for r in &mut self.regions {
            bound_examples(&mut r.examples);
        }
        if self != before {
            self.truncated = true;
        }
        self
    }

    fn examples_mut(&mut self) -> Vec<&mut Vec<ExamplePoint>> {
        self.slices
            .iter_mut()
            .map(|s| &mut s.examples)
            .chain(self.regions.iter_mut().map(|r| &mut r.examples))
            .collect()
    }

    /// Smaller forms of the explanation, each cutting more: display fields of the examples, then half
    /// the items, then the examples. For fitting a size limit: use the first that fits.
    pub fn shrinking(&self) -> Vec<Explanation> {
        let mut out = Vec::new();
        let mut e = self.clone();
        e.truncated = true;
        for list in e.examples_mut() {
            list.iter_mut().for_each(|p| p.fields.clear());
        }
        out.push(e.clone());
        e.slices.truncate(e.slices.len().div_ceil(2));
        e.regions.truncate(e.regions.len().div_ceil(2));
        out.push(e.clone());
        for list in e.examples_mut() {
            list.clear();
        }
        out.push(e.clone());
        e.slices.truncate(1);
        e.regions.truncate(1);
        out.push(e);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(id: &str, url_len: usize) -> ExamplePoint {
        ExamplePoint {
            id: id.into(),
            fields: BTreeMap::from([
                ("frame_url".to_string(), "u".repeat(url_len)),
                ("site".to_string(), "berlin".to_string()),
            ]),
        }
    }

    fn big() -> Explanation {
        Explanation {
            slices: (0..8)
                .map(|i| SliceSummary {
                    field: "camera_id".into(),
                    value: format!("cam-{i}"),
                    status: "drifted".into(),
                    examples: (0..5).map(|j| example(&j.to_string(), 400)).collect(),
                    ..SliceSummary::default()
                })
                .collect(),
            regions: (0..6)
                .map(|i| RegionSummary {
                    region: i,
                    kind: "new".into(),
                    examples: vec![example("1", 10)],
                    ..RegionSummary::default()
                })
                .collect(),
            ..Explanation::default()
        }
    }

    #[test]
    fn a_bounded_explanation_keeps_the_top_items_and_cuts_long_values() {
        let e = big().bounded(1);
        assert!(e.truncated);
        assert_eq!(e.slices.len(), MAX_SLICES);
        assert_eq!(e.regions.len(), MAX_REGIONS);
        assert_eq!(e.slices[0].value, "cam-0");
        assert_eq!(e.slices[0].examples.len(), MAX_EXAMPLES);
        assert_eq!(e.slices[0].examples[0].fields.len(), 1);
        assert!(
            e.slices[0].examples[0]
                .fields
                .values()
                .all(|v| v.len() == MAX_TEXT)
        );
        let small = Explanation {
            slices: vec![SliceSummary::default()],
            ..Explanation::default()
        };
        assert!(!small.clone().bounded(2).truncated);
    }

    #[test]
    fn each_shrinking_step_is_smaller_and_the_last_keeps_the_top_items_only() {
        let steps = big().bounded(2).shrinking();
        let sizes: Vec<usize> = steps
            .iter()
            .map(|e| serde_json::to_string(e).unwrap().len())
            .collect();
        assert!(sizes.windows(2).all(|w| w[1] < w[0]), "{sizes:?}");
        let last = steps.last().unwrap();
        assert_eq!((last.slices.len(), last.regions.len()), (1, 1));
        assert!(last.slices[0].examples.is_empty());
        assert!(steps.iter().all(|e| e.truncated));
    }
}
