//! Generates the CustomResourceDefinition YAML of both kinds (`driftwatch crd`); writes files only in `emit`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::v1alpha1::{DriftEvent, DriftMonitor};

/// Both CRDs, DriftMonitor first.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![DriftMonitor::crd(), DriftEvent::crd()]
}

/// The file name under `crds/` of a CRD.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(crd)
}

/// Every CRD as one multi-document YAML stream.
pub fn all_yaml() -> Result<String, serde_yaml::Error> {
    let docs: Result<Vec<String>, _> = all().iter().map(to_yaml).collect();
    Ok(docs?.into_iter().map(|d| format!("---\n{d}")).collect())
}

#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("cannot render CRD YAML: {0}")]
    Render(#[from] serde_yaml::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Prints every CRD to stdout, or writes one file per CRD into `dir`.
pub fn emit(dir: Option<&std::path::Path>) -> Result<(), CrdError> {
    let Some(dir) = dir else {
        print!("{}", all_yaml()?);
        return Ok(());
    };
    for crd in all() {
        let path = dir.join(file_name(&crd));
        std::fs::write(&path, to_yaml(&crd)?).map_err(|source| CrdError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
