//! The crate's one .npy reader (`driftwatch compute`, the bundled example, `driftwatch qdrant-load`):
//! little-endian float32/float64 (and int64 for 1-D values such as timestamps), C order, 1-D or 2-D,
//! with a clear reason for every file it refuses.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ndarray::{Array1, Array2};

use crate::compute::{ComputeError, file_error};

/// A numeric .npy array read as f32 (float64 is narrowed), C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl NpyArray {
    pub fn read_file(path: &Path) -> Result<NpyArray, ComputeError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| file_error(&name, e.to_string()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut reader = std::io::BufReader::with_capacity(1 << 20, &file);
        let header = Header::read(&mut reader, Some(len)).map_err(|r| file_error(&name, r))?;
        if header.width == 4 {
            // Big float32 windows: two positioned reads of the halves in parallel (page faults and the
            // copy out of the page cache are the cost, and they split across cores).
            let mut data = vec![0f32; header.count];
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut data);
            let half = bytes.len() / 2;
            let (first, second) = bytes.split_at_mut(half);
            let (a, b) = rayon::join(
                || file.read_exact_at(first, header.data_offset),
                || file.read_exact_at(second, header.data_offset + half as u64),
            );
            a.and(b).map_err(|_| file_error(&name, "file is truncated"))?;
            from_le_f32(&mut data);
            return Ok(NpyArray {
                shape: header.shape,
                data,
            });
        }
        // The reader that parsed the header has read ahead into the data: keep reading from it.
        header.read_data(reader).map_err(|r| file_error(&name, r))
    }

    pub fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
        Self::read(bytes, Some(bytes.len() as u64))
    }

    /// Parses the .npy format (versions 1–3): little-endian float32/float64, C order, 1-D or 2-D.
    pub fn read(mut r: impl Read, file_len: Option<u64>) -> Result<NpyArray, String> {
        Header::read(&mut r, file_len)?.read_data(r)
    }

    /// As `[n, d]` embeddings.
    pub fn into_matrix(self, what: &str) -> Result<Array2<f32>, ComputeError> {
        if self.shape.len() != 2 {
            return Err(file_error(
                "",
                format!(
                    "{what} need a 2-D [n, d] array, this one has shape {:?}",
                    self.shape
                ),
            ));
        }
        Array2::from_shape_vec((self.shape[0], self.shape[1]), self.data)
            .map_err(|e| file_error("", e.to_string()))
    }

    /// As `[n]` scores (from `[n]` or `[n, 1]`).
    pub fn into_vector(self, what: &str) -> Result<Array1<f32>, ComputeError> {
        match self.shape.as_slice() {
            [_] | [_, 1] => Ok(Array1::from(self.data)),
            other => Err(file_error(
                "",
                format!("{what} need a 1-D [n] or [n, 1] array, this one has shape {other:?}"),
            )),
        }
    }
}

/// Reads a 1-D (or `[n, 1]`) .npy file of float64, float32 or int64 values as f64, without narrowing
/// (timestamps in unix seconds need more than f32's 24 bits).
pub fn read_values_f64(path: &Path) -> Result<Vec<f64>, ComputeError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| file_error(&name, e.to_string()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let header = Header::read(&mut reader, Some(len)).map_err(|r| file_error(&name, r))?;
    if !matches!(header.shape.as_slice(), [_] | [_, 1]) {
        return Err(file_error(
            &name,
            format!(
                "expected a 1-D [n] or [n, 1] array, this one has shape {:?}",
                header.shape
            ),
        ));
    }
    let mut bytes = vec![0u8; header.count * header.width];
    reader
        .read_exact(&mut bytes)
        .map_err(|_| file_error(&name, "file is truncated"))?;
    Ok(bytes
        .chunks_exact(header.width)
        .map(|b| header.value(b))
        .collect())
}

/// The element type of a .npy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
}

/// The parsed header of a .npy file.
struct Header {
    shape: Vec<usize>,
    kind: Kind,
    /// Bytes per value: 4 (float32) or 8 (float64, int64).
    width: usize,
    count: usize,
    /// Where the data starts in the file.
    data_offset: u64,
}

impl Header {
    /// Reads and checks the header; the reader is left at the first data byte.
    fn read(mut r: impl Read, file_len: Option<u64>) -> Result<Header, String> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)
            .map_err(|_| "not a .npy file (too short)".to_string())?;
        if &magic[..6] != b"\x93NUMPY" {
            return Err("not a .npy file (bad magic; save with numpy.save)".into());
        }
        let header_len = match magic[6] {
            1 => {
                let mut b = [0u8; 2];
                r.read_exact(&mut b).map_err(|e| e.to_string())?;
                u16::from_le_bytes(b) as usize
            }
            2 | 3 => {
                let mut b = [0u8; 4];
                r.read_exact(&mut b).map_err(|e| e.to_string())?;
                u32::from_le_bytes(b) as usize
            }
            v => return Err(format!("unsupported .npy version {v}")),
        };
        if header_len > 1 << 20 {
            return Err("corrupt .npy header (too long)".into());
        }
        let mut header = vec![0u8; header_len];
        r.read_exact(&mut header)
            .map_err(|_| "truncated .npy header".to_string())?;
        let header = String::from_utf8_lossy(&header).to_string();
        let descr = header_value(&header, "descr").ok_or("the .npy header has no descr")?;
        let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_string();
        let fortran = header_value(&header, "fortran_order").ok_or("the .npy header has no fortran_order")?;
        if fortran.trim() != "False" {
            return Err("array is in Fortran (column-major) order; save a C-order array, e.g. numpy.save(path, numpy.ascontiguousarray(a))".into());
        }
        let shape_text = header_value(&header, "shape").ok_or("the .npy header has no shape")?;
        let shape: Vec<usize> = shape_text
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<usize>().map_err(|_| format!("bad shape {shape_text}")))
            .collect::<Result<_, _>>()?;
        let (kind, width) = match descr.as_str() {
            "<f4" | "=f4" => (Kind::Float, 4),
            "<f8" | "=f8" => (Kind::Float, 8),
            "<i8" | "=i8" => (Kind::Int, 8),
            ">f4" | ">f8" | ">i8" => {
                return Err(format!("big-endian dtype {descr}; convert with a.astype('<f4')"));
            }
            "|O" | "O" => {
                return Err("dtype object (a ragged array of rows with different lengths?); save a rectangular float32 array".into());
            }
            other => {
                return Err(format!(
                    "dtype {other}; expected float32 (<f4), float64 (<f8) or, for 1-D values, int64 (<i8)"
                ));
            }
        };
        if shape.is_empty() || shape.len() > 2 {
            return Err(format!(
                "array has {} dimensions; expected [n, d] or [n]",
                shape.len()
            ));
        }
        let count = shape
            .iter()
            .try_fold(1usize, |a, &b| a.checked_mul(b))
            .ok_or("shape too large")?;
        let bytes = count.checked_mul(width).ok_or("shape too large")?;
        if let Some(len) = file_len {
            let have =
                len.saturating_sub((magic.len() + header_len + if magic[6] == 1 { 2 } else { 4 }) as u64);
            if have < bytes as u64 {
                return Err(format!(
                    "file is truncated: the header promises {bytes} data bytes, found {have}"
                ));
            }
        }
        Ok(Header {
            shape,
            kind,
            width,
            count,
            data_offset: (magic.len() + header_len + if magic[6] == 1 { 2 } else { 4 }) as u64,
        })
    }

    /// One little-endian value of the file's type.
    fn value(&self, b: &[u8]) -> f64 {
        match (self.kind, b.len()) {
            (Kind::Float, 4) => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            (Kind::Int, _) => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f64,
            _ => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }

    /// Reads the data that follows the header.
    fn read_data(self, mut r: impl Read) -> Result<NpyArray, String> {
        let (count, width) = (self.count, self.width);
        let data = if width == 4 {
            // Straight into the array's memory: no staging buffer, no second copy of a big window.
            let mut data = vec![0f32; count];
            r.read_exact(bytemuck::cast_slice_mut(&mut data))
                .map_err(|_| "file is truncated".to_string())?;
            from_le_f32(&mut data);
            data
        } else {
            let mut data = Vec::with_capacity(count);
            let mut buf = vec![0u8; (1 << 16) * width];
            let mut left = count;
            while left > 0 {
                let take = left.min(1 << 16);
                let chunk = &mut buf[..take * width];
                r.read_exact(chunk).map_err(|_| "file is truncated".to_string())?;
                data.extend(chunk.chunks_exact(8).map(|b| self.value(b) as f32));
                left -= take;
            }
            data
        };
        Ok(NpyArray {
            shape: self.shape,
            data,
        })
    }
}

/// The .npy data is little-endian; a no-op on little-endian machines.
fn from_le_f32(data: &mut [f32]) {
    if cfg!(target_endian = "big") {
        data.iter_mut()
            .for_each(|v| *v = f32::from_bits(u32::from_le(v.to_bits())));
    }
}

/// The text of `'key': value` in a .npy header dict.
fn header_value(header: &str, key: &str) -> Option<String> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-1 .npy file with this header dict and payload.
    fn npy(dict: &str, payload: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(payload);
        out
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn float32_and_float64_matrices_parse_to_the_same_values() {
        let values = [1.0f32, -2.5, 3.25, 4.0, 0.5, 6.0];
        let f4 = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
            &f32_bytes(&values),
        );
        let f8_payload: Vec<u8> = values.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect();
        let f8 = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }",
            &f8_payload,
        );
        for bytes in [f4, f8] {
            let a = NpyArray::parse(&bytes).expect("parses");
            assert_eq!(a.shape, vec![3, 2]);
            assert_eq!(a.data, values);
        }
    }

    #[test]
    fn the_parallel_file_read_matches_the_streaming_parse() {
        let values: Vec<f32> = (0..10_001).map(|i| i as f32 * 0.25 - 7.0).collect();
        let bytes = npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (10001,), }",
            &f32_bytes(&values),
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("odd.npy");
        std::fs::write(&path, &bytes).expect("write");
        let from_file = NpyArray::read_file(&path).expect("reads");
        assert_eq!(from_file, NpyArray::parse(&bytes).expect("parses"));
        assert_eq!(from_file.data, values);
    }

    #[test]
    fn a_float64_file_bigger_than_the_read_buffer_reads_whole() {
        let values: Vec<f64> = (0..300_000).map(|i| f64::from(i) * 0.5).collect();
        let payload: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (300000,), }",
            &payload,
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wide.npy");
        std::fs::write(&path, &bytes).expect("write");
        let a = NpyArray::read_file(&path).expect("reads");
        let expect: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        assert_eq!(a.data, expect);
    }

    #[test]
    fn one_dimensional_values_read_as_f64_without_narrowing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let stamps = [1_764_000_000i64, 1_764_000_001, -5];
        let i8_bytes: Vec<u8> = stamps.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f8_bytes: Vec<u8> = [1_764_000_000.25f64, 0.5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        for (name, bytes, expect) in [
            (
                "i8.npy",
                npy(
                    "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                    &i8_bytes,
                ),
                vec![1_764_000_000.0, 1_764_000_001.0, -5.0],
            ),
            (
                "f8.npy",
                npy(
                    "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }",
                    &f8_bytes,
                ),
                vec![1_764_000_000.25, 0.5],
            ),
            (
                "f4.npy",
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                    &f32_bytes(&[0.5, 2.0]),
                ),
                vec![0.5, 2.0],
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).expect("write");
            assert_eq!(read_values_f64(&path).expect(name), expect, "{name}");
        }
        let matrix = dir.path().join("m.npy");
        std::fs::write(
            &matrix,
            npy(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }",
                &f32_bytes(&[1.0, 2.0]),
            ),
        )
        .expect("write");
        let err = read_values_f64(&matrix).expect_err("a matrix is not 1-D");
        assert!(err.to_string().contains("1-D"), "{err}");
    }

    #[test]
    fn unusable_files_are_refused_with_the_reason() {
        let cases = [
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                    &[0; 16],
                ),
                "Fortran",
            ),
            (
                npy(
                    "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                    &[0; 16],
                ),
                "ragged",
            ),
            (
                npy(
                    "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                    &[0; 8],
                ),
                "expected float32",
            ),
            (
                npy(
                    "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
                    &[0; 8],
                ),
                "big-endian",
            ),
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2), }",
                    &[0; 32],
                ),
                "3 dimensions",
            ),
            (
                npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }",
                    &[0; 12],
                ),
                "truncated",
            ),
            (b"PK\x03\x04 not numpy".to_vec(), "bad magic"),
        ];
        for (bytes, reason) in cases {
            let err = NpyArray::parse(&bytes).expect_err(reason);
            assert!(err.contains(reason), "{err:?} should mention {reason:?}");
        }
    }
}
