//! Reading files within stated bounds, and writing them so that an interruption never leaves
//! a half-written one in place.

use std::io::{Read, Write};
use std::path::Path;

/// The largest image file read: far above any photo's size, far below what would hurt.
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 << 20;
/// The largest text file read: configs, run records, metrics.
pub const MAX_TEXT_FILE_BYTES: u64 = 16 << 20;

/// Reads a whole regular file of at most `limit` bytes. Anything else is refused with a
/// one-line reason and without blocking: a directory, a FIFO or socket (which would wait for
/// a writer for ever), a device such as `/dev/zero` (which never ends), or a file over the
/// limit. Symbolic links are followed to what they name.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading waits for a writer unless asked not to.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    // A socket cannot be opened at all ("no such device or address"): say what it is.
    let file = options
        .open(path)
        .map_err(|error| match std::fs::metadata(path) {
            Ok(metadata) if !metadata.is_file() => not_a_regular_file(&metadata, ""),
            _ => error,
        })?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(not_a_regular_file(&metadata, ""));
    }
    let too_large = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {} MiB this reads", limit >> 20),
        )
    };
    if metadata.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // One byte past the limit tells a file that grew after it was measured.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// [`read_bounded`] for UTF-8 text.
pub fn read_text_bounded(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_bounded(path, limit)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// The SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The checksum file kept beside `path`: `model.bpk` → `model.bpk.sha256`.
pub fn checksum_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

/// [`write_atomic`], then the file's SHA-256 beside it in `sha256sum`'s format (so
/// `sha256sum -c model.bpk.sha256` checks it too), for [`verify_checksum`] to find damage.
pub fn write_with_checksum(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(path, bytes)?;
    let line = format!("{}  {}\n", sha256_hex(bytes), file_name(path));
    write_atomic(&checksum_path(path), line.as_bytes())
}

/// Why a file's bytes are not vouched for by its checksum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumError {
    /// No checksum file: a file from before checksums were kept, or one whose checksum was
    /// removed, cannot be told from a damaged one, so the message says how to vouch for it.
    #[error(
        "has no checksum ({sums}) to show it is undamaged; if you trust it, write one with \
         `sha256sum {name} > {sums}` in its folder"
    )]
    Missing {
        /// The file's name.
        name: String,
        /// Its checksum file's name.
        sums: String,
    },
    /// The checksum file exists but cannot be read.
    #[error("cannot read {origin}: {reason}")]
    Unreadable {
        /// The checksum file.
        origin: String,
        /// Why not.
        reason: String,
    },
    /// The checksum file holds no SHA-256.
    #[error("{origin} holds no SHA-256 (64 hex digits, as `sha256sum` writes them)")]
    NoSha256 {
        /// The checksum file.
        origin: String,
    },
    /// The bytes are not the ones the checksum was taken of.
    #[error("does not match its checksum in {origin}: the file is damaged or was changed")]
    Mismatch {
        /// The checksum file.
        origin: String,
    },
}

/// Checks `bytes`, read from `path`, against the checksum [`write_with_checksum`] kept
/// beside it.
pub fn verify_checksum(path: &Path, bytes: &[u8]) -> Result<(), ChecksumError> {
    let sums = checksum_path(path);
    let text = match read_text_bounded(&sums, MAX_TEXT_FILE_BYTES) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ChecksumError::Missing {
                name: file_name(path).into_owned(),
                sums: file_name(&sums).into_owned(),
            });
        }
        Err(e) => {
            return Err(ChecksumError::Unreadable {
                origin: sums.display().to_string(),
                reason: e.to_string(),
            });
        }
        Ok(text) => text,
    };
    matches_checksum(&text, bytes, &sums.display().to_string())
}

fn file_name(path: &Path) -> std::borrow::Cow<'_, str> {
    path.file_name().unwrap_or_default().to_string_lossy()
}

/// Checks `bytes` against the SHA-256 in `text`, read from `origin`: a `sha256sum` line
/// (`HEX  NAME`) or its `--tag` form (`SHA256 (NAME) = HEX`), in either case.
pub fn matches_checksum(text: &str, bytes: &[u8], origin: &str) -> Result<(), ChecksumError> {
    let origin = origin.to_string();
    match checksum_in(text) {
        None => Err(ChecksumError::NoSha256 { origin }),
        Some(expected) if expected == sha256_hex(bytes) => Ok(()),
        Some(_) => Err(ChecksumError::Mismatch { origin }),
    }
}

/// The SHA-256 a checksum file's first line holds, lowercased; `None` if it holds none.
fn checksum_in(text: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    let hex = match line.strip_prefix("SHA256 (") {
        Some(tagged) => tagged.rsplit_once(") = ")?.1,
        None => line.split_whitespace().next()?,
    };
    let is_sha256 = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    is_sha256.then(|| hex.to_ascii_lowercase())
}

/// The file a write to `path` lands in: `path` itself, or what its chain of symbolic links
/// names; an error if that exists and is not a regular file.
pub fn write_target(path: &Path) -> std::io::Result<std::path::PathBuf> {
    // The kernel's own limit on links followed in one lookup.
    const MAX_LINKS: usize = 40;
    let mut target = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let metadata = match std::fs::symlink_metadata(&target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(target),
            other => other?,
        };
        if metadata.file_type().is_symlink() {
            // A relative link is relative to its own folder; `join` keeps an absolute one.
            let link = std::fs::read_link(&target)?;
            target = target.parent().unwrap_or(Path::new("")).join(link);
        } else if metadata.is_file() {
            return Ok(target);
        } else {
            return Err(not_a_regular_file(&metadata, ": name a file to write"));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "too many levels of symbolic links",
    ))
}

/// The error for a path that names something other than a regular file, saying what it is;
/// `advice` follows on the same line.
fn not_a_regular_file(metadata: &std::fs::Metadata, advice: &str) -> std::io::Error {
    let kind = file_kind(&metadata.file_type());
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("not a regular file but {kind}{advice}"),
    )
}

/// What a file that is not a regular file is, in words.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// Writes `bytes` to a file whose name this program made up (`model.bpk`, `metrics.csv`,
/// `0003-seven.png`) in a folder it was given: through a temporary file beside it, flushed,
/// then renamed over it, so readers see the old file or the new one, never a torn one.
/// Whatever else is found under that name is refused, never written through nor replaced: a
/// symbolic link (someone else may have planted it in the folder), a device, a FIFO, a
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a symbolic link, where this program writes a file of its own: remove the \
                 link, or write elsewhere",
            ));
        }
        Ok(metadata) if !metadata.is_file() => {
            return Err(not_a_regular_file(&metadata, ": name a file to write"));
        }
        Ok(_) => {}
    }
    replace_file(path, bytes)
}

/// [`write_atomic`] for a path the user named (`--predictions FILE`): a symbolic link is
/// written through, to the file it names, and stays a link, as the user asked; a target that
/// is not a regular file is refused.
pub fn write_named_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_file(&write_target(path)?, bytes)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it, renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    #[cfg_attr(not(unix), allow(unused_mut, reason = "only Unix sets permissions"))]
    let mut builder = tempfile::Builder::new();
    // Readable by others like any file the user creates (temporary files default to 0600).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut file = builder.tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FIFO at `path`, made by the system's `mkfifo` (no `unsafe` in this crate's tests).
    #[cfg(unix)]
    fn make_fifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.png");
        std::fs::write(&small, [7u8; 100]).unwrap();
        assert_eq!(read_bounded(&small, 100).unwrap(), [7u8; 100]);
        let err = read_bounded(&small, 99).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        let err = read_bounded(dir.path(), 100).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        #[cfg(unix)]
        {
            // A device that never ends and a FIFO nobody writes to: refused at once.
            let err = read_bounded(Path::new("/dev/zero"), 100).unwrap_err();
            assert!(err.to_string().contains("a device"), "{err}");
            let fifo = dir.path().join("x.png");
            make_fifo(&fifo);
            let err = read_bounded(&fifo, 100).unwrap_err();
            assert!(err.to_string().contains("a FIFO"), "{err}");
        }
        let link = dir.path().join("link.png");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&small, &link).unwrap();
            assert_eq!(read_bounded(&link, 100).unwrap().len(), 100);
        }
        std::fs::write(dir.path().join("bad.toml"), [0xff, 0xfe]).unwrap();
        let err = read_text_bounded(&dir.path().join("bad.toml"), 100).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn writes_go_through_links_and_never_replace_special_files() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        // A name this program made up is never written through a link.
        let err = write_atomic(&link, b"new").unwrap_err();
        assert!(err.to_string().contains("a symbolic link"), "{err}");
        assert_eq!(std::fs::read(&real).unwrap(), b"old");
        // A path the user named is.
        write_named_file(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        // A dangling link makes the file it names.
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink(dir.path().join("made.json"), &dangling).unwrap();
        write_named_file(&dangling, b"made").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("made.json")).unwrap(),
            b"made"
        );
        // A FIFO (like a device) stays what it was, and the error says why.
        let fifo = dir.path().join("fifo.csv");
        make_fifo(&fifo);
        let err = write_atomic(&fifo, b"x").unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let err = write_atomic(dir.path(), b"x").unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        // A loop of links is refused, not followed for ever.
        std::os::unix::fs::symlink("loop-b", dir.path().join("loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", dir.path().join("loop-b")).unwrap();
        let err = write_named_file(&dir.path().join("loop-a"), b"x").unwrap_err();
        assert!(err.to_string().contains("symbolic links"), "{err}");
        let err = write_atomic(&dir.path().join("loop-a"), b"x").unwrap_err();
        assert!(err.to_string().contains("a symbolic link"), "{err}");
    }

    #[test]
    fn a_checksum_beside_the_file_finds_any_changed_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.bpk");
        let bytes: Vec<u8> = (0..=255).collect();
        write_with_checksum(&path, &bytes).unwrap();
        let sums = std::fs::read_to_string(dir.path().join("model.bpk.sha256")).unwrap();
        assert_eq!(sums, format!("{}  model.bpk\n", sha256_hex(&bytes)));
        assert_eq!(verify_checksum(&path, &bytes), Ok(()));
        let mut flipped = bytes.clone();
        flipped[100] ^= 0x10;
        let err = verify_checksum(&path, &flipped).unwrap_err().to_string();
        assert!(
            err.contains("model.bpk.sha256") && err.contains("damaged"),
            "{err}"
        );
        // Without a checksum nothing shows the file is whole: refused, saying how to vouch.
        let err = verify_checksum(&dir.path().join("old.bpk"), &bytes).unwrap_err();
        assert!(matches!(err, ChecksumError::Missing { .. }), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("no checksum") && err.contains("sha256sum old.bpk > old.bpk.sha256"),
            "{err}"
        );
    }

    #[test]
    fn a_checksum_is_read_in_any_form_sha256sum_writes() {
        let bytes = b"weights";
        let hex = sha256_hex(bytes);
        for text in [
            format!("{hex}  model.bpk\n"),
            format!("{}  model.bpk\n", hex.to_uppercase()),
            format!("SHA256 (model.bpk) = {hex}\n"),
            format!("{hex} *model.bpk"),
        ] {
            assert_eq!(matches_checksum(&text, bytes, "s"), Ok(()), "{text}");
        }
        for text in ["", "\n", "not a checksum", "SHA256 (model.bpk) = 12"] {
            let err = matches_checksum(text, bytes, "model.bpk.sha256").unwrap_err();
            assert!(
                matches!(err, ChecksumError::NoSha256 { .. }),
                "{text:?}: {err}"
            );
        }
        let other = sha256_hex(b"other");
        let err = matches_checksum(&other, bytes, "s").unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_is_named_as_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.png");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let err = read_bounded(&path, 1024).unwrap_err();
        assert!(err.to_string().contains("a socket"), "{err}");
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
