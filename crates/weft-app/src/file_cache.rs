//! A small in-memory cache of small files (unix only), so that a hot small file costs one
//! `lstat` per request instead of open + fstat + read + close.
//!
//! Correctness: an entry is used only while the file's identity and change stamps are exactly
//! those it was read with: device, inode, size, modification time and status-change time (both
//! in nanoseconds). `ctime` cannot be set by user space, so an in-place rewrite, a rename over
//! the file or a `touch -d` back to the old mtime all miss. Timestamps are coarse (a kernel
//! tick), so two writes within one tick could leave the stamps unchanged: a file whose mtime
//! or ctime is less than [`SETTLE_SECS`] old is never cached (git's "racily clean" rule).
//!
//! Bounds: files up to [`MAX_FILE`] bytes, at most [`MAX_ENTRIES`] entries and the configured
//! total of bytes (per event loop); when full, arbitrary entries are evicted. WASI has no
//! stable `ctime`/inode in std, so there the cache is off and every request reads the file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Largest file kept in memory.
pub const MAX_FILE: u64 = 64 * 1024;
/// Most entries.
pub const MAX_ENTRIES: usize = 1024;
/// A file changed this recently (in seconds) is not cached.
pub const SETTLE_SECS: i64 = 2;

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of a regular file (`None` where it cannot be had: not unix, not a file).
    pub fn of(meta: &Metadata) -> Option<Stamp> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if !meta.is_file() {
                return None;
            }
            Some(Stamp {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }

    /// Whether the file has not changed for [`SETTLE_SECS`] at `now` (seconds since the epoch).
    pub fn settled(&self, now: u64) -> bool {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        self.mtime.0.max(self.ctime.0).saturating_add(SETTLE_SECS) <= now
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

/// A cached file: its bytes and the header values derived from it (made once).
#[derive(Clone, Debug)]
pub struct Cached {
    pub bytes: Arc<[u8]>,
    pub content_type: Cow<'static, str>,
    pub etag: Arc<str>,
    /// `Last-Modified` in seconds and as text.
    pub last_modified: u64,
    pub last_modified_text: Arc<str>,
}

struct Entry {
    stamp: Stamp,
    cached: Cached,
}

/// FNV-1a: keys are paths of files that exist below the root (a client cannot choose them
/// freely), so a fast unkeyed hash is fine here.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<OsString, Entry, BuildHasherDefault<Fnv>>,
    bytes: usize,
}

/// The cache (shared by reference; one per event loop, so the lock is never contended).
pub struct FileCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl FileCache {
    /// A cache of at most `capacity` bytes (0: off).
    pub fn new(capacity: usize) -> FileCache {
        FileCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether a file of this stamp may be cached at all.
    pub fn wants(&self, stamp: &Stamp, now: u64) -> bool {
        self.capacity > 0
            && stamp.size <= MAX_FILE
            && usize::try_from(stamp.size).is_ok_and(|s| s <= self.capacity)
            && stamp.settled(now)
    }

    /// The cached `path` if cached with exactly this stamp.
    pub fn get(&self, path: &Path, stamp: &Stamp) -> Option<Cached> {
        if self.capacity == 0 {
            return None;
        }
        let inner = self.inner.lock().ok()?;
        let entry = inner.entries.get(path.as_os_str())?;
        (entry.stamp == *stamp).then(|| entry.cached.clone())
    }

    /// Remembers `path` as read with `stamp`.
    pub fn insert(&self, path: &Path, stamp: Stamp, cached: Cached) {
        let len = cached.bytes.len();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if let Some(old) = inner.entries.remove(path.as_os_str()) {
            inner.bytes = inner.bytes.saturating_sub(old.cached.bytes.len());
        }
        while !inner.entries.is_empty()
            && (inner.entries.len() >= MAX_ENTRIES
                || inner.bytes.saturating_add(len) > self.capacity)
        {
            let Some(victim) = inner.entries.keys().next().cloned() else {
                break;
            };
            if let Some(old) = inner.entries.remove(&victim) {
                inner.bytes = inner.bytes.saturating_sub(old.cached.bytes.len());
            }
        }
        if inner.bytes.saturating_add(len) > self.capacity {
            return;
        }
        inner.bytes += len;
        inner
            .entries
            .insert(path.as_os_str().to_owned(), Entry { stamp, cached });
    }

    /// (entries, bytes) held.
    pub fn usage(&self) -> (usize, usize) {
        self.inner
            .lock()
            .map(|i| (i.entries.len(), i.bytes))
            .unwrap_or((0, 0))
    }
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cached(bytes: &[u8]) -> Cached {
        Cached {
            bytes: Arc::from(bytes),
            content_type: Cow::Borrowed("text/plain"),
            etag: Arc::from("\"x\""),
            last_modified: 0,
            last_modified_text: Arc::from("Thu, 01 Jan 1970 00:00:00 GMT"),
        }
    }

    fn stamp(size: u64, mtime: i64) -> Stamp {
        Stamp {
            dev: 1,
            ino: 2,
            size,
            mtime: (mtime, 0),
            ctime: (mtime, 0),
        }
    }

    #[test]
    fn hit_only_with_the_same_stamp() {
        let cache = FileCache::new(1000);
        let p = Path::new("/x");
        cache.insert(p, stamp(3, 10), cached(b"abc"));
        assert_eq!(
            cache.get(p, &stamp(3, 10)).map(|c| c.bytes.to_vec()),
            Some(b"abc".to_vec())
        );
        assert!(cache.get(p, &stamp(3, 11)).is_none());
        assert!(cache.get(Path::new("/y"), &stamp(3, 10)).is_none());
    }

    #[test]
    fn bounded() {
        let cache = FileCache::new(10);
        for i in 0..10u8 {
            let name = format!("/f{i}");
            cache.insert(Path::new(&name), stamp(4, 10), cached(&[i; 4]));
            let (_, bytes) = cache.usage();
            assert!(bytes <= 10);
        }
        assert!(cache.usage().0 <= 2);
        let big = FileCache::new(10);
        big.insert(Path::new("/big"), stamp(11, 10), cached(&[0u8; 11]));
        assert_eq!(big.usage(), (0, 0));
    }

    #[test]
    fn recent_files_are_not_wanted() {
        let cache = FileCache::new(1000);
        assert!(cache.wants(&stamp(3, 100), 102));
        assert!(!cache.wants(&stamp(3, 100), 101));
        assert!(!cache.wants(&stamp(MAX_FILE + 1, 100), 1000));
        assert!(!FileCache::new(0).wants(&stamp(3, 100), 1000));
    }
}
