//! The page's "on this device" mode: the files of a site `cargo xtask web` built (the network
//! as WebAssembly, its JavaScript binding, the weights), served under `/device/` from memory.
//! They are read once at start, so a request can name nothing but those files.

use crate::api::ApiError;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest site read: the one `cargo xtask web` builds is under 3 MB.
const MAX_SITE_BYTES: u64 = 32 * 1024 * 1024;

/// The site's `device/` files, by name.
#[derive(Debug, Default)]
pub struct Site {
    files: HashMap<String, (&'static str, Bytes)>,
}

/// Why `--site` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// The folder or a file in it cannot be read.
    #[error("{}: cannot read: {error}", path.display())]
    Unreadable {
        /// What could not be read.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// Not a site `cargo xtask web` built.
    #[error("{}: no {} here; build the site with `cargo xtask web --out DIR`", dir.display(), missing)]
    NotASite {
        /// The folder given.
        dir: PathBuf,
        /// The file it lacks.
        missing: &'static str,
    },
    /// Larger than any site this project builds.
    #[error("{}: over {} MB; is this the site `cargo xtask web` built?", dir.display(), MAX_SITE_BYTES >> 20)]
    TooLarge {
        /// The folder given.
        dir: PathBuf,
    },
}

impl Site {
    /// Reads the `device/` folder of the site in `dir`.
    pub fn load(dir: &Path) -> Result<Self, SiteError> {
        let device = dir.join("device");
        let unreadable = |path: &Path, error| SiteError::Unreadable {
            path: path.to_path_buf(),
            error,
        };
        for missing in ["web.js", "web_bg.wasm", "model.bpk", "config.toml"] {
            if !device.join(missing).is_file() {
                return Err(SiteError::NotASite {
                    dir: dir.to_path_buf(),
                    missing,
                });
            }
        }
        let mut files = HashMap::new();
        let mut total = 0;
        for entry in std::fs::read_dir(&device).map_err(|e| unreadable(&device, e))? {
            let path = entry.map_err(|e| unreadable(&device, e))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let bytes = data::read_bounded(&path, MAX_SITE_BYTES - total).map_err(|error| {
                match error.kind() {
                    std::io::ErrorKind::InvalidData => SiteError::TooLarge {
                        dir: dir.to_path_buf(),
                    },
                    _ => unreadable(&path, error),
                }
            })?;
            total += bytes.len() as u64;
            files.insert(name.to_string(), (content_type(name), Bytes::from(bytes)));
        }
        Ok(Self { files })
    }
}

/// What a browser must be told a file is: a module script and WebAssembly are refused under
/// any other type.
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("toml" | "sha256") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `GET /device/{name}`: one of the site's files, or 404.
pub async fn file(
    State(state): State<Arc<crate::api::AppState>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let found = state.site.as_ref().and_then(|site| site.files.get(&name));
    match found {
        Some((kind, bytes)) => ([(header::CONTENT_TYPE, *kind)], bytes.clone()).into_response(),
        None => ApiError::not_found(match state.site {
            Some(_) => "no such file in the site",
            None => "this server runs no on-device site (start it with --site DIR)",
        })
        .into_response(),
    }
}
