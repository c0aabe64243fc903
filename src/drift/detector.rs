//! The detector abstraction: one trait every method × source implements, and the one table that says
//! which pairs exist. No I/O.
//!
//! A detector is a statistic of a labelling of the pooled points (`statistics`: its value on the
//! observed split and on every shared relabelling), optionally an analytic p-value of the observed
//! split, the principal components it reads, and whether its null is the check's shared one. The
//! engine (`super::run`) turns statistics into decisions and the check's calibrated verdict.

use ndarray::ArrayView2;

use super::defaults::Plan;
use super::pooled::Pooled;
use super::relabel::Relabellings;
use super::rng::Rng;
use super::{classifier, kl, mmd, univariate, wasserstein};
use crate::api::v1alpha1::{DataSource, Method};

/// What a detector reads: the pooled points of one check, reference first.
pub struct Input<'a> {
    /// Reference points (the first `n` pooled points) in the observed split.
    pub n: usize,
    /// Pooled embeddings, when the detector's source is `embeddings`.
    pub embeddings: Option<&'a Pooled<'a>>,
    /// Principal-component scores `[N, k]` of the pooled points (axes fitted on the pooled windows).
    pub components: Option<ArrayView2<'a, f64>>,
    /// Pooled confidence scores, when the source is `confidence_scores`.
    pub scores: Option<&'a [f64]>,
}

impl<'a> Input<'a> {
    /// The pooled embeddings. The engine provides them to every embeddings detector.
    pub fn embeddings(&self) -> &'a Pooled<'a> {
        self.embeddings
            .expect("the engine pools the embeddings for every embeddings detector")
    }

    /// The first `k` principal-component scores. The engine fits at least as many as any detector asks.
    pub fn components(&self, k: usize) -> ArrayView2<'a, f64> {
        let x = self
            .components
            .expect("the engine projects the windows for every detector that reads components");
        let k = k.min(x.ncols());
        x.slice_axis_move(ndarray::Axis(1), ndarray::Slice::from(..k))
    }

    /// The pooled confidence scores. The engine provides them to every confidence_scores detector.
    pub fn scores(&self) -> &'a [f64] {
        self.scores
            .expect("the engine pools the scores for every confidence_scores detector")
    }
}

/// Where a detector's null distribution comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Null {
    /// The statistic on the check's shared relabellings (the joint permutation test).
    Shared,
    /// A test of its own (e.g. a classifier fitted on its own split): `statistics` returns the observed
    /// value followed by draws of its own null, and the verdict combines it by Bonferroni.
    Own,
}

/// One drift detector.
pub trait Detector: Sync {
    /// The resolved spec.
    fn plan(&self) -> &Plan;

    /// Principal components of the pooled windows the statistic reads (0: none).
    fn components(&self) -> usize {
        0
    }

    /// Where the null comes from.
    fn null(&self) -> Null {
        Null::Shared
    }

    /// The statistic on every labelling of `labels` (index 0: the observed split); larger means more
    /// drift. `rng` is the detector's own seeded stream (directions, frequencies, subsamples).
    fn statistics(&self, input: &Input, labels: &Relabellings, rng: &mut Rng) -> Vec<f64>;

    /// The analytic p-value of the observed split, for methods that have one (their `pValue` decides on it).
    fn analytic_p(&self, _input: &Input) -> Option<f64> {
        None
    }
}

/// The detector for a plan; `None` when the method is not defined on the source. The one place that
/// maps method × source to an implementation.
pub fn build(plan: &Plan) -> Option<Box<dyn Detector>> {
    use DataSource::{ConfidenceScores, Embeddings};
    let p = plan.clone();
    Some(match (plan.method, plan.source) {
        (Method::KlDivergence, Embeddings) => Box::new(kl::Components(p)),
        (Method::KlDivergence, ConfidenceScores) => Box::new(univariate::HistKl(p)),
        (Method::Emd, Embeddings) if plan.components_set => Box::new(wasserstein::PerComponent(p)),
        (Method::Emd, Embeddings) => Box::new(wasserstein::Sliced(p)),
        (Method::Emd, ConfidenceScores) => Box::new(wasserstein::Scores(p)),
        (Method::Mmd, Embeddings) => Box::new(mmd::Mmd(p)),
        (Method::Ks, Embeddings) => Box::new(univariate::KsComponents(p)),
        (Method::Ks, ConfidenceScores) => Box::new(univariate::KsScores(p)),
        (Method::Psi, ConfidenceScores) => Box::new(univariate::Psi(p)),
        (Method::Classifier, Embeddings) => Box::new(classifier::Classifier(p)),
        (Method::Psi, Embeddings) | (Method::Mmd | Method::Classifier, ConfidenceScores) => return None,
    })
}

/// Whether the method is defined on the source.
pub fn supports(method: Method, source: DataSource) -> bool {
    build(&Plan::bare(method, source)).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_only_for_scores_and_mmd_and_the_classifier_only_for_embeddings() {
        let methods = [
            Method::KlDivergence,
            Method::Emd,
            Method::Mmd,
            Method::Psi,
            Method::Ks,
            Method::Classifier,
        ];
        let supported: Vec<(Method, DataSource)> = methods
            .iter()
            .flat_map(|&m| [(m, DataSource::Embeddings), (m, DataSource::ConfidenceScores)])
            .filter(|&(m, s)| supports(m, s))
            .collect();
        assert_eq!(supported.len(), 9);
        assert!(!supports(Method::Psi, DataSource::Embeddings));
        assert!(!supports(Method::Mmd, DataSource::ConfidenceScores));
        assert!(!supports(Method::Classifier, DataSource::ConfidenceScores));
    }

    #[test]
    fn only_detectors_on_components_ask_for_them() {
        let components = |m, s| build(&Plan::bare(m, s)).map(|d| d.components());
        assert_eq!(components(Method::KlDivergence, DataSource::Embeddings), Some(2));
        assert_eq!(components(Method::Ks, DataSource::Embeddings), Some(5));
        assert_eq!(components(Method::Emd, DataSource::Embeddings), Some(0));
        assert_eq!(components(Method::Mmd, DataSource::Embeddings), Some(0));
        assert_eq!(components(Method::Ks, DataSource::ConfidenceScores), Some(0));
        let mut per_pc = Plan::bare(Method::Emd, DataSource::Embeddings);
        per_pc.components_set = true;
        assert_eq!(build(&per_pc).map(|d| d.components()), Some(5));
        assert_eq!(
            build(&Plan::bare(Method::Classifier, DataSource::Embeddings)).map(|d| d.null()),
            Some(Null::Own)
        );
    }
}
