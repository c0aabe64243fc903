//! The batch archive: spools points to `points.jsonl` and `vectors.npy` on disk (bounded memory), then
//! writes a deterministic `tar.gz` or `zip` (fixed mtimes, owners and modes, fixed entry order) so the same
//! inputs give byte-identical archives. File I/O only, no network.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::source::Point;
use crate::api::v1alpha1::ArchiveFormat;

/// The `schemaVersion` of `manifest.json`.
pub const MANIFEST_SCHEMA: &str = "driftwatch.dev/batch/v1";
/// Bytes reserved for the `.npy` header (magic + version + length + dict), a multiple of 64.
const NPY_HEADER_BYTES: usize = 128;
/// Modification time of every archive entry (1980-01-01T00:00:00Z, the earliest a zip can say).
pub const ENTRY_MTIME: u64 = 315_532_800;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("writing {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("point {id} has a {found}-dimensional vector, the others have {expected}")]
    Dimensions {
        id: String,
        expected: usize,
        found: usize,
    },
    #[error("point {0} has no vector (is --vector-name right?)")]
    NoVector(String),
    #[error("serializing point {id}: {source}")]
    Json { id: String, source: serde_json::Error },
    #[error("writing the zip archive: {0}")]
    Zip(#[from] zip::result::ZipError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A `Write` that hashes and counts what passes through.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hex SHA-256 and size of a file, read in 1 MiB pieces.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// One line of `points.jsonl`.
#[derive(Serialize)]
struct PointLine<'a> {
    id: &'a super::source::PointId,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a str>,
    /// Row of this point in `vectors.npy`.
    row: u64,
    payload: &'a serde_json::Value,
    vector: &'a [f32],
    /// The archive path of the object the point refers to, when it was included.
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<&'a str>,
}

/// Points spooled to disk: `points.jsonl` and `vectors.npy` in a work folder.
pub struct Spool {
    dir: PathBuf,
    points: BufWriter<File>,
    vectors: BufWriter<File>,
    rows: u64,
    dims: Option<usize>,
    row_bytes: Vec<u8>,
}

impl Spool {
    pub fn create(dir: &Path) -> Result<Self, ArchiveError> {
        let points_path = dir.join("points.jsonl");
        let vectors_path = dir.join("vectors.npy");
        let points = File::create(&points_path).map_err(io_err(&points_path))?;
        let mut vectors = BufWriter::with_capacity(
            1 << 20,
            File::create(&vectors_path).map_err(io_err(&vectors_path))?,
        );
        vectors
            .write_all(&[b' '; NPY_HEADER_BYTES])
            .map_err(io_err(&vectors_path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            points: BufWriter::with_capacity(1 << 20, points),
            vectors,
            rows: 0,
            dims: None,
            row_bytes: Vec::new(),
        })
    }

    pub fn points_path(&self) -> PathBuf {
        self.dir.join("points.jsonl")
    }

    pub fn vectors_path(&self) -> PathBuf {
        self.dir.join("vectors.npy")
    }

    /// Appends a point (its JSON line and its vector row).
    pub fn push(&mut self, point: &Point, object: Option<&str>) -> Result<(), ArchiveError> {
        let id = point.id.to_string();
        if point.vector.is_empty() {
            return Err(ArchiveError::NoVector(id));
        }
        let dims = *self.dims.get_or_insert(point.vector.len());
        if point.vector.len() != dims {
            return Err(ArchiveError::Dimensions {
                id,
                expected: dims,
                found: point.vector.len(),
            });
        }
        let line = PointLine {
            id: &point.id,
            timestamp: point.timestamp.as_deref(),
            row: self.rows,
            payload: &point.payload,
            vector: &point.vector,
            object,
        };
        let points_path = self.points_path();
        serde_json::to_writer(&mut self.points, &line).map_err(|source| ArchiveError::Json {
            id: id.clone(),
            source,
        })?;
        self.points.write_all(b"\n").map_err(io_err(&points_path))?;
        self.row_bytes.clear();
        for x in &point.vector {
            self.row_bytes.extend_from_slice(&x.to_le_bytes());
        }
        let vectors_path = self.vectors_path();
        self.vectors
            .write_all(&self.row_bytes)
            .map_err(io_err(&vectors_path))?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn dims(&self) -> usize {
        self.dims.unwrap_or(0)
    }

    /// Flushes both files and writes the final `.npy` header (shape `(rows, dims)`, little-endian f32).
    pub fn finish(self) -> Result<SpooledFiles, ArchiveError> {
        let points_path = self.points_path();
        let vectors_path = self.vectors_path();
        let mut points = self.points.into_inner().map_err(|e| ArchiveError::Io {
            path: points_path.display().to_string(),
            source: e.into_error(),
        })?;
        points.flush().map_err(io_err(&points_path))?;
        let mut vectors = self.vectors.into_inner().map_err(|e| ArchiveError::Io {
            path: vectors_path.display().to_string(),
            source: e.into_error(),
        })?;
        let dims = self.dims.unwrap_or(0);
        vectors.seek(SeekFrom::Start(0)).map_err(io_err(&vectors_path))?;
        vectors
            .write_all(&npy_header(self.rows, dims))
            .map_err(io_err(&vectors_path))?;
        vectors.flush().map_err(io_err(&vectors_path))?;
        Ok(SpooledFiles {
            points: points_path,
            vectors: vectors_path,
            rows: self.rows,
            dims,
        })
    }
}

/// The `.npy` v1.0 header for a C-order `(rows, dims)` array of `<f4`, exactly [`NPY_HEADER_BYTES`] long.
pub fn npy_header(rows: u64, dims: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dims}), }}");
    let mut out = Vec::with_capacity(NPY_HEADER_BYTES);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    let header_len = (NPY_HEADER_BYTES - 10) as u16;
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    while out.len() < NPY_HEADER_BYTES - 1 {
        out.push(b' ');
    }
    out.push(b'\n');
    out
}

/// Spooled points and vectors, ready to be archived.
#[derive(Debug, Clone)]
pub struct SpooledFiles {
    pub points: PathBuf,
    pub vectors: PathBuf,
    pub rows: u64,
    pub dims: usize,
}

/// A file to put into the archive.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the archive.
    pub name: String,
    /// Where its bytes are.
    pub source: EntrySource,
}

#[derive(Debug, Clone)]
pub enum EntrySource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A finished archive on disk.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// The archive file name for a format (`batch.tar.gz` or `batch.zip`).
pub fn archive_name(format: ArchiveFormat) -> &'static str {
    match format {
        ArchiveFormat::TarGz => "batch.tar.gz",
        ArchiveFormat::Zip => "batch.zip",
    }
}

/// gzip level: the vectors are float noise to deflate, so the fast level loses little and gains a lot.
const GZIP_LEVEL: u32 = 1;

/// Writes the entries, in the given order, into `out` and returns its checksum and size.
pub fn write_archive(
    format: ArchiveFormat,
    entries: &[Entry],
    out: &Path,
) -> Result<ArchiveFile, ArchiveError> {
    match format {
        ArchiveFormat::TarGz => write_tar_gz(entries, out)?,
        ArchiveFormat::Zip => write_zip(entries, out)?,
    }
    let (sha256, size) = hash_file(out).map_err(io_err(out))?;
    Ok(ArchiveFile {
        path: out.to_path_buf(),
        sha256,
        size,
    })
}

fn write_tar_gz(entries: &[Entry], out: &Path) -> Result<(), ArchiveError> {
    let file = File::create(out).map_err(io_err(out))?;
    let gz = flate2::GzBuilder::new().mtime(0).write(
        BufWriter::with_capacity(1 << 20, file),
        flate2::Compression::new(GZIP_LEVEL),
    );
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(ENTRY_MTIME);
        header.set_entry_type(tar::EntryType::Regular);
        match &entry.source {
            EntrySource::Bytes(bytes) => {
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, &entry.name, bytes.as_slice())
                    .map_err(io_err(out))?;
            }
            EntrySource::File(path) => {
                let file = File::open(path).map_err(io_err(path))?;
                let len = file.metadata().map_err(io_err(path))?.len();
                header.set_size(len);
                tar.append_data(&mut header, &entry.name, BufReader::with_capacity(1 << 20, file))
                    .map_err(io_err(path))?;
            }
        }
    }
    let gz = tar.into_inner().map_err(io_err(out))?;
    let mut buffered = gz.finish().map_err(io_err(out))?;
    buffered.flush().map_err(io_err(out))?;
    Ok(())
}

fn write_zip(entries: &[Entry], out: &Path) -> Result<(), ArchiveError> {
    use zip::write::SimpleFileOptions;
    let file = File::create(out).map_err(io_err(out))?;
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let base = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(GZIP_LEVEL as i64))
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for entry in entries {
        match &entry.source {
            EntrySource::Bytes(bytes) => {
                zip.start_file(
                    entry.name.as_str(),
                    base.large_file(bytes.len() as u64 >= u32::MAX as u64),
                )?;
                zip.write_all(bytes).map_err(io_err(out))?;
            }
            EntrySource::File(path) => {
                let mut file = File::open(path).map_err(io_err(path))?;
                let len = file.metadata().map_err(io_err(path))?.len();
                zip.start_file(entry.name.as_str(), base.large_file(len >= u32::MAX as u64))?;
                io::copy(&mut file, &mut zip).map_err(io_err(path))?;
            }
        }
    }
    let mut buffered = zip.finish()?;
    buffered.flush().map_err(io_err(out))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::source::PointId;
    use super::*;

    fn point(i: u64, dims: usize) -> Point {
        Point {
            id: PointId::Num(i),
            timestamp: Some("2026-01-01T00:00:00Z".into()),
            payload: serde_json::json!({"i": i}),
            vector: (0..dims).map(|d| (i * 10 + d as u64) as f32).collect(),
        }
    }

    #[test]
    fn the_npy_header_is_128_bytes_and_names_the_shape() {
        let header = npy_header(10_000, 768);
        assert_eq!(header.len(), 128);
        assert_eq!(&header[..6], b"\x93NUMPY");
        assert_eq!(u16::from_le_bytes([header[8], header[9]]), 118);
        let text = String::from_utf8_lossy(&header[10..]);
        assert!(text.contains("'shape': (10000, 768)"), "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_vector_of_another_dimension_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path()).unwrap();
        spool.push(&point(1, 3), None).unwrap();
        assert!(matches!(
            spool.push(&point(2, 4), None),
            Err(ArchiveError::Dimensions {
                expected: 3,
                found: 4,
                ..
            })
        ));
    }

    #[test]
    fn the_same_entries_give_byte_identical_archives_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::create(dir.path()).unwrap();
        for i in 0..50 {
            spool.push(&point(i, 8), None).unwrap();
        }
        let files = spool.finish().unwrap();
        let entries = vec![
            Entry {
                name: "manifest.json".into(),
                source: EntrySource::Bytes(b"{}".to_vec()),
            },
            Entry {
                name: "points.jsonl".into(),
                source: EntrySource::File(files.points.clone()),
            },
            Entry {
                name: "vectors.npy".into(),
                source: EntrySource::File(files.vectors.clone()),
            },
        ];
        for format in [ArchiveFormat::TarGz, ArchiveFormat::Zip] {
            let a = write_archive(format, &entries, &dir.path().join("a")).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1100));
            let b = write_archive(format, &entries, &dir.path().join("b")).unwrap();
            assert_eq!(a.sha256, b.sha256, "{format:?}");
            assert_eq!(a.size, b.size);
        }
    }
}
