//! The IDX format MNIST ships in: a big-endian header, then raw `u8` data.

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why an IDX file could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be read or decompressed.
    #[error("{path}: cannot read: {error}")]
    Io {
        /// The IDX file.
        path: PathBuf,
        /// What the system or the decompressor said (part of this message, so not a
        /// separate source that `{:#}` would print a second time).
        error: std::io::Error,
    },
    /// The first four bytes are not those of an IDX file of unsigned bytes.
    #[error("{path}: not an IDX file of unsigned bytes (magic {magic:#010x})")]
    BadMagic {
        /// The IDX file.
        path: PathBuf,
        /// The four bytes found, big-endian.
        magic: u32,
    },
    /// The file ends inside its header.
    #[error("{path}: truncated header ({len} bytes)")]
    TruncatedHeader {
        /// The IDX file.
        path: PathBuf,
        /// Bytes in the whole file.
        len: usize,
    },
    /// The data is shorter or longer than the dimensions say.
    #[error("{path}: header promises {expected} data bytes but the file holds {actual}")]
    WrongLength {
        /// The IDX file.
        path: PathBuf,
        /// Bytes the dimensions call for.
        expected: usize,
        /// Bytes present after the header.
        actual: usize,
    },
}

/// A validated IDX file: its dimensions and its decompressed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxFile {
    /// The size of each dimension, e.g. `[10000, 28, 28]`.
    pub dims: Vec<usize>,
    /// The whole decompressed file, header included: what published checksums cover.
    pub bytes: Vec<u8>,
    header_len: usize,
}

impl IdxFile {
    /// The data after the header, row-major.
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.header_len..]
    }

    /// The data after the header, row-major, without copying it.
    pub fn into_data(mut self) -> Vec<u8> {
        self.bytes.drain(..self.header_len);
        self.bytes
    }
}

/// The largest IDX file read, compressed or decompressed: MNIST's training images are 47 MB.
pub const MAX_IDX_BYTES: u64 = 512 << 20;

/// Reads an IDX file of `u8`s, gzipped or not (told apart by the gzip magic, not the name).
pub fn read_idx(path: &Path) -> Result<IdxFile, IdxError> {
    read_idx_within(path, MAX_IDX_BYTES)
}

/// [`read_idx`] with another bound on the file's size, compressed and decompressed.
fn read_idx_within(path: &Path, limit: u64) -> Result<IdxFile, IdxError> {
    let io = |error| IdxError::Io {
        path: path.to_path_buf(),
        error,
    };
    let bytes = crate::read_bounded(path, limit).map_err(io)?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 5);
        // A few kilobytes of gzip can inflate to gigabytes: stop one byte past the bound.
        GzDecoder::new(bytes.as_slice())
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(io)?;
        if out.len() as u64 > limit {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("decompresses to more than the {limit} bytes this reads"),
            )));
        }
        out
    } else {
        bytes
    };
    parse_idx(bytes, path)
}

fn parse_idx(bytes: Vec<u8>, path: &Path) -> Result<IdxFile, IdxError> {
    let word = |i: usize| -> Option<u32> {
        let chunk = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes(chunk.try_into().ok()?))
    };
    let truncated = || IdxError::TruncatedHeader {
        path: path.to_path_buf(),
        len: bytes.len(),
    };
    let magic = word(0).ok_or_else(truncated)?;
    // 0x08 is the "unsigned byte" type code; the low byte counts the dimensions.
    let rank = (magic & 0xff) as usize;
    if magic >> 8 != 0x08 || rank == 0 {
        return Err(IdxError::BadMagic {
            path: path.to_path_buf(),
            magic,
        });
    }
    let dims = (1..=rank)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(truncated)?;
    let header = 4 * (rank + 1);
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or(usize::MAX);
    let actual = bytes.len() - header;
    if actual != expected {
        return Err(IdxError::WrongLength {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(IdxFile {
        dims,
        bytes,
        header_len: header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    #[test]
    fn a_gzip_that_inflates_past_the_bound_is_refused_without_inflating_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bomb-idx3-ubyte.gz");
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&idx_bytes(&[100, 28, 28], &vec![0; 78_400]))
            .unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert!(read_idx_within(&path, 78_416).is_ok());
        let err = read_idx_within(&path, 10_000).unwrap_err().to_string();
        assert!(
            err.contains("bomb-idx3-ubyte.gz") && err.contains("more than"),
            "{err}"
        );
        // The reason is in the message once: no source for an error chain to repeat.
        let err = read_idx_within(&path, 10_000).unwrap_err();
        assert!(std::error::Error::source(&err).is_none());
    }

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = (0x0800u32 | dims.len() as u32).to_be_bytes().to_vec();
        for d in dims {
            bytes.extend(d.to_be_bytes());
        }
        bytes.extend(data);
        bytes
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_raw_and_gzipped_files_alike() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = idx_bytes(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let raw = write(&dir, "raw", &bytes);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&bytes).unwrap();
        let zipped = write(&dir, "zipped", &gz.finish().unwrap());

        for path in [raw, zipped] {
            let file = read_idx(&path).unwrap();
            assert_eq!(file.dims, vec![2, 2, 3]);
            assert_eq!(file.data(), (1..=12).collect::<Vec<u8>>());
            assert_eq!(file.bytes, bytes);
            assert_eq!(file.into_data(), (1..=12).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn rejects_a_wrong_magic_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "float.idx", &[0, 0, 0x0d, 1, 0, 0, 0, 0]);
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, IdxError::BadMagic { .. }));
        assert!(err.to_string().contains("float.idx"), "{err}");
    }

    #[test]
    fn rejects_truncated_headers_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let short_header = write(&dir, "short", &[0, 0, 8, 3, 0, 0]);
        assert!(matches!(
            read_idx(&short_header),
            Err(IdxError::TruncatedHeader { .. })
        ));
        let short_data = write(&dir, "cut", &idx_bytes(&[4, 2], &[1, 2, 3]));
        let err = read_idx(&short_data).unwrap_err();
        assert!(
            matches!(
                err,
                IdxError::WrongLength {
                    expected: 8,
                    actual: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_truncated_gzip_stream() {
        let dir = tempfile::tempdir().unwrap();
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&idx_bytes(&[1000], &[7; 1000])).unwrap();
        let zipped = gz.finish().unwrap();
        let path = write(&dir, "cut.gz", &zipped[..zipped.len() / 2]);
        let err = read_idx(&path).unwrap_err();
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_named() {
        let err = read_idx(Path::new("/no/such/file.idx")).unwrap_err();
        assert!(err.to_string().contains("/no/such/file.idx"));
    }
}
