//! The packaging Job's view of Qdrant: the ids in the comparison window, then the sampled points with
//! payload and vector. Network I/O (gRPC).

use super::PackageError;
use super::cli::PackageArgs;
use super::source::{Point, PointId, PointSource};

/// Points of one collection's comparison window in Qdrant.
pub struct QdrantPoints {
    _url: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QdrantPointsError(String);

impl QdrantPoints {
    pub fn from_args(args: &PackageArgs) -> Result<Self, PackageError> {
        let url = args
            .qdrant_url
            .clone()
            .ok_or_else(|| PackageError::InvalidArgument("--qdrant-url (or --points-file) is required".into()))?;
        Ok(Self { _url: url })
    }
}

impl PointSource for QdrantPoints {
    type Error = QdrantPointsError;

    async fn scan_ids(&self, _visit: &mut (dyn FnMut(PointId) + Send)) -> Result<u64, Self::Error> {
        Err(QdrantPointsError("the Qdrant source is not wired in yet".into()))
    }

    async fn fetch(&self, _ids: &[PointId]) -> Result<Vec<Point>, Self::Error> {
        Err(QdrantPointsError("the Qdrant source is not wired in yet".into()))
    }
}
