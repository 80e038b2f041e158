//! Finding names below the root: symbolic links must stay inside it (native targets), dot
//! names are refused unless allowed, and a directory is read for its listing.

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::listing::{self, Entry};
#[cfg(not(target_os = "wasi"))]
use crate::mapping::is_hidden;

/// Why a lookup found nothing to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    NotFound,
    Forbidden,
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        if e.kind() == io::ErrorKind::PermissionDenied {
            Refusal::Forbidden
        } else {
            Refusal::NotFound
        }
    }
}

/// Finds `names` below `root`: the path and its metadata (links followed). On native targets
/// every component is checked with `lstat`; when one is a symbolic link, the whole path is
/// resolved and must stay inside the canonical root (and, unless `allow_dotfiles`, not lead to
/// a dot name below it). Every failure is "not found", whatever the reason (missing, a link
/// leaving the root, a host sandbox refusing the path, a directory that may not be searched):
/// nothing about the filesystem is revealed.
pub(super) fn lookup(
    root: &Path,
    canonical: Option<&Path>,
    names: &[&str],
    allow_dotfiles: bool,
) -> Result<(PathBuf, Metadata), Refusal> {
    find(root, canonical, names, allow_dotfiles).map_err(|_| Refusal::NotFound)
}

/// Whether `real`, a canonical path, lies inside the canonical root and, unless
/// `allow_dotfiles`, has no hidden name below it ([`is_hidden`]).
#[cfg(not(target_os = "wasi"))]
fn resolves_inside(real: &Path, canonical: Option<&Path>, allow_dotfiles: bool) -> bool {
    let Some(below) = canonical.and_then(|c| real.strip_prefix(c).ok()) else {
        return false;
    };
    allow_dotfiles || !is_hidden(below.components().map(|c| c.as_os_str().as_encoded_bytes()))
}

fn find(
    root: &Path,
    canonical: Option<&Path>,
    names: &[&str],
    allow_dotfiles: bool,
) -> io::Result<(PathBuf, Metadata)> {
    let mut path = root.to_path_buf();
    #[cfg(not(target_os = "wasi"))]
    {
        let mut linked = false;
        let mut last = None;
        for name in names {
            path.push(name);
            if !linked {
                let m = std::fs::symlink_metadata(&path)?;
                if m.file_type().is_symlink() {
                    linked = true;
                } else {
                    last = Some(m);
                }
            }
        }
        if linked {
            let real = std::fs::canonicalize(&path)?;
            if !resolves_inside(&real, canonical, allow_dotfiles) {
                return Err(io::ErrorKind::NotFound.into());
            }
            let meta = std::fs::metadata(&path)?;
            return Ok((path, meta));
        }
        let meta = match last {
            Some(m) => m,
            None => std::fs::metadata(&path)?,
        };
        Ok((path, meta))
    }
    #[cfg(target_os = "wasi")]
    {
        let _ = (canonical, allow_dotfiles);
        for name in names {
            path.push(name);
        }
        let meta = std::fs::metadata(&path)?;
        Ok((path, meta))
    }
}

/// Reads a directory for its listing: at most [`listing::MAX_ENTRIES`] entries (the flag says
/// whether more were left out), names that are not UTF-8 skipped, dot names skipped unless
/// `allow_dotfiles`, links that could not be served (native: leaving the root, or leading to a
/// dot name unless `allow_dotfiles`) skipped.
pub(super) fn read_entries(
    dir: &Path,
    canonical: Option<&Path>,
    allow_dotfiles: bool,
) -> io::Result<(Vec<Entry>, bool)> {
    let mut entries = Vec::new();
    let mut omitted = false;
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else {
            continue;
        };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') && !allow_dotfiles {
            continue;
        }
        if entries.len() == listing::MAX_ENTRIES {
            omitted = true;
            break;
        }
        let path = entry.path();
        #[cfg(not(target_os = "wasi"))]
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let inside = std::fs::canonicalize(&path)
                .is_ok_and(|real| resolves_inside(&real, canonical, allow_dotfiles));
            if !inside {
                continue;
            }
        }
        #[cfg(target_os = "wasi")]
        let _ = canonical;
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        entries.push(Entry {
            name,
            is_dir: meta.is_dir(),
            size: meta.len(),
            modified,
        });
    }
    listing::sort(&mut entries);
    Ok((entries, omitted))
}
