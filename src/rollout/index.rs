//! The listing cache behind `thread/list`: the rollout files in order and what each one's head
//! says (metadata, first user text), kept in memory by the server so that a page costs the same
//! wherever it starts and paging through N threads reads each file's head once.
//!
//! Never trusted over the files (Codex may write rollouts beside us): every page checks the
//! day directories' modification times (a file added, removed or moved there changes them) and
//! re-reads those that changed, and checks each listed file's size and modification time,
//! re-reading its head when they changed. The cost of a page is then one `stat` per day
//! directory plus one per file it looks at; by creation time (file-name order) nothing else.
//! By update time the first page (no cursor) takes a `stat` of every file and keeps that order
//! for the pages that follow it while the directories are unchanged.
//!
//! The heads are also saved in `CODEX_HOME/codex-lite-list-index.jsonl` (a version line, then
//! one `{path, size, mtime_ns, meta, preview}` per file), so a new server does not open every
//! file again. That file is only a cache: entries are checked like the memory ones, a missing,
//! corrupt or older-version file is ignored (and rewritten), and it is replaced whole (written
//! aside, then renamed) when a listing read at least one head, at the end of a paging run or
//! every [`SAVE_EVERY_HEADS`] new heads.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::SessionMeta;
use super::files::{ARCHIVED_DIR, SESSIONS_DIR, id_from_file_name};

/// The saved index, under CODEX_HOME.
const INDEX_FILE: &str = "codex-lite-list-index.jsonl";
/// Its format; a file of another version is ignored.
const INDEX_VERSION: u32 = 1;
/// Within a long paging run, the index is saved after this many newly read heads.
const SAVE_EVERY_HEADS: usize = 2_000;

/// What `thread/list` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Creation time: the time stamp and id in the file name.
    CreatedAt,
    /// The file's last modification.
    UpdatedAt,
}

/// One page's question.
pub struct PageRequest<'a> {
    /// `archived_sessions/` instead of `sessions/`.
    pub archived: bool,
    /// Sort key.
    pub sort: SortKey,
    /// Oldest first.
    pub ascending: bool,
    /// Where the previous page stopped (its `next_cursor`).
    pub cursor: Option<&'a str>,
    /// Most entries to return.
    pub limit: usize,
    /// Which threads to return, from their metadata and first user text.
    pub filter: &'a dyn Fn(&SessionMeta, &str) -> bool,
}

/// One listed rollout.
pub struct Listed {
    /// The file.
    pub path: PathBuf,
    /// Its metadata.
    pub meta: SessionMeta,
    /// Its first user text.
    pub preview: String,
}

/// One page's answer.
pub struct Page {
    /// The threads, in order.
    pub entries: Vec<Listed>,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<String>,
}

/// The file's identity for staleness: size and modification time (ns).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: u64,
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime_ns = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos();
    Some(Stamp {
        size: meta.len(),
        mtime_ns: u64::try_from(mtime_ns).unwrap_or(u64::MAX),
    })
}

/// A directory's own modification time (changes when entries are added, removed or renamed).
fn dir_mtime(path: &Path) -> Option<u64> {
    stamp_of(path).map(|s| s.mtime_ns)
}

#[derive(Serialize, Deserialize)]
struct Head {
    #[serde(flatten)]
    stamp: Stamp,
    meta: SessionMeta,
    preview: String,
}

/// One saved line: a head and its file, relative to CODEX_HOME.
#[derive(Serialize, Deserialize)]
struct SavedHead {
    path: PathBuf,
    #[serde(flatten)]
    head: Head,
}

/// One listed tree (`sessions/` or `archived_sessions/`).
#[derive(Default)]
struct Tree {
    /// Day directory → (its mtime when read, its rollout file names).
    dirs: HashMap<PathBuf, (u64, Vec<String>)>,
    /// Every file, sorted by name (creation order).
    by_name: Vec<(String, PathBuf)>,
    /// The update-time order of the last first page: (key, path).
    by_update: Option<Vec<(String, PathBuf)>>,
}

/// The listing cache (one per server; see the module doc).
#[derive(Default)]
pub struct Listing {
    live: Tree,
    archived: Tree,
    heads: HashMap<PathBuf, Head>,
    /// Whether the saved index was read (once, on the first page).
    loaded: bool,
    /// Heads read from files since the index was last saved.
    unsaved: usize,
}

/// The directories holding rollout files: `sessions/YYYY/MM/DD`, or `archived_sessions`.
fn leaf_dirs(codex_home: &Path, archived: bool) -> Vec<PathBuf> {
    if archived {
        return vec![codex_home.join(ARCHIVED_DIR)];
    }
    let mut level = vec![codex_home.join(SESSIONS_DIR)];
    for _ in 0..3 {
        let mut next = Vec::new();
        for dir in level {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            next.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        level = next;
    }
    level
}

fn rollout_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| id_from_file_name(name).is_some())
        .collect()
}

impl Tree {
    /// Brings the file list up to date with the directories; true when it changed.
    fn refresh(&mut self, codex_home: &Path, archived: bool) -> bool {
        let leaves = leaf_dirs(codex_home, archived);
        let mut changed = leaves.len() != self.dirs.len();
        let mut dirs = HashMap::with_capacity(leaves.len());
        for dir in leaves {
            let mtime = dir_mtime(&dir).unwrap_or(0);
            match self.dirs.remove(&dir) {
                Some((seen, names)) if seen == mtime => {
                    dirs.insert(dir, (seen, names));
                }
                _ => {
                    changed = true;
                    let names = rollout_names(&dir);
                    dirs.insert(dir, (mtime, names));
                }
            }
        }
        self.dirs = dirs;
        if changed || self.by_name.is_empty() {
            let mut all: Vec<(String, PathBuf)> = self
                .dirs
                .iter()
                .flat_map(|(dir, (_, names))| names.iter().map(|n| (n.clone(), dir.join(n))))
                .collect();
            all.sort();
            self.by_name = all;
            self.by_update = None;
        }
        changed
    }

    /// The order for `sort`, as (key, path) with keys comparable to cursors.
    fn order(&mut self, sort: SortKey, first_page: bool) -> &[(String, PathBuf)] {
        match sort {
            SortKey::CreatedAt => &self.by_name,
            SortKey::UpdatedAt => {
                if first_page || self.by_update.is_none() {
                    let mut keyed: Vec<(String, PathBuf)> = self
                        .by_name
                        .iter()
                        .filter_map(|(name, path)| {
                            let ms = stamp_of(path)?.mtime_ns / 1_000_000;
                            Some((format!("{ms:020}:{name}"), path.clone()))
                        })
                        .collect();
                    keyed.sort();
                    self.by_update = Some(keyed);
                }
                self.by_update.as_deref().unwrap_or_default()
            }
        }
    }
}

impl Listing {
    /// One page of rollouts, newest first unless `ascending`.
    pub fn page(&mut self, codex_home: &Path, request: &PageRequest<'_>) -> Page {
        if !self.loaded {
            self.loaded = true;
            self.heads = load_index(codex_home);
        }
        let Listing {
            live,
            archived,
            heads,
            unsaved,
            ..
        } = self;
        let tree = if request.archived { archived } else { live };
        if tree.refresh(codex_home, request.archived) {
            // Forget heads of files that left this tree.
            let root = codex_home.join(if request.archived {
                ARCHIVED_DIR
            } else {
                SESSIONS_DIR
            });
            let present: HashSet<&Path> = tree.by_name.iter().map(|(_, p)| p.as_path()).collect();
            heads.retain(|path, _| !path.starts_with(&root) || present.contains(path.as_path()));
        }
        let order = tree.order(request.sort, request.cursor.is_none());
        // The first position past the cursor in the page's direction, and the direction.
        let (mut at, step): (isize, isize) = match (request.cursor, request.ascending) {
            (None, true) => (0, 1),
            (None, false) => (order.len() as isize - 1, -1),
            (Some(c), true) => (order.partition_point(|(k, _)| k.as_str() <= c) as isize, 1),
            (Some(c), false) => (
                order.partition_point(|(k, _)| k.as_str() < c) as isize - 1,
                -1,
            ),
        };
        let mut entries = Vec::new();
        let mut next_cursor = None;
        let mut last_key: Option<&str> = None;
        while let Some((key, path)) = usize::try_from(at).ok().and_then(|i| order.get(i)) {
            at += step;
            if entries.len() == request.limit {
                next_cursor = last_key.map(str::to_string);
                break;
            }
            last_key = Some(key);
            let Some(head) = head(heads, path, unsaved) else {
                continue;
            };
            if !(request.filter)(&head.meta, &head.preview) {
                continue;
            }
            entries.push(Listed {
                path: path.clone(),
                meta: head.meta.clone(),
                preview: head.preview.clone(),
            });
        }
        if *unsaved > 0 && (next_cursor.is_none() || *unsaved >= SAVE_EVERY_HEADS) {
            match save_index(codex_home, heads) {
                Ok(()) => *unsaved = 0,
                Err(e) => crate::log::warn(&format!("{e:#}")),
            }
        }
        Page {
            entries,
            next_cursor,
        }
    }
}

/// The saved heads (none when the file is missing, unreadable or of another version).
fn load_index(codex_home: &Path) -> HashMap<PathBuf, Head> {
    let mut heads = HashMap::new();
    let Ok(file) = std::fs::File::open(codex_home.join(INDEX_FILE)) else {
        return heads;
    };
    let mut lines = BufReader::new(file).split(b'\n').map_while(Result::ok);
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version = lines
        .next()
        .and_then(|l| serde_json::from_slice::<Version>(&l).ok());
    if version.is_none_or(|v| v.version != INDEX_VERSION) {
        return heads;
    }
    for line in lines {
        if let Ok(saved) = serde_json::from_slice::<SavedHead>(&line) {
            heads.insert(codex_home.join(saved.path), saved.head);
        }
    }
    heads
}

/// Replaces the saved index with `heads` (written aside, then renamed over it).
fn save_index(codex_home: &Path, heads: &HashMap<PathBuf, Head>) -> anyhow::Result<()> {
    use anyhow::Context;
    let path = codex_home.join(INDEX_FILE);
    let aside = codex_home.join(format!("{INDEX_FILE}.{}.tmp", std::process::id()));
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&aside).with_context(|| format!("creating {}", aside.display()))?,
    );
    let mut write = || -> std::io::Result<()> {
        writeln!(out, "{}", serde_json::json!({ "version": INDEX_VERSION }))?;
        for (file, head) in heads {
            let Ok(relative) = file.strip_prefix(codex_home) else {
                continue;
            };
            #[derive(Serialize)]
            struct SavedRef<'a> {
                path: &'a Path,
                #[serde(flatten)]
                head: &'a Head,
            }
            serde_json::to_writer(
                &mut out,
                &SavedRef {
                    path: relative,
                    head,
                },
            )?;
            out.write_all(b"\n")?;
        }
        out.flush()
    };
    let written = write().with_context(|| format!("writing {}", aside.display()));
    drop(out);
    if let Err(e) = written.and_then(|()| {
        std::fs::rename(&aside, &path)
            .with_context(|| format!("renaming {} to {}", aside.display(), path.display()))
    }) {
        let _ = std::fs::remove_file(&aside);
        return Err(e);
    }
    Ok(())
}

/// The head of `path`, read again when the file changed; `None` when it is gone or has no
/// metadata.
fn head<'a>(
    heads: &'a mut HashMap<PathBuf, Head>,
    path: &Path,
    unsaved: &mut usize,
) -> Option<&'a Head> {
    let Some(stamp) = stamp_of(path) else {
        heads.remove(path);
        return None;
    };
    let fresh = heads.get(path).is_some_and(|h| h.stamp == stamp);
    if !fresh {
        let (mut meta, preview) = super::read_summary(path).ok()?;
        // Listing never shows them, and they can be long.
        meta.base_instructions = None;
        meta.developer_instructions = None;
        meta.dynamic_tools = None;
        *unsaved += 1;
        heads.insert(
            path.to_path_buf(),
            Head {
                stamp,
                meta,
                preview,
            },
        );
    }
    heads.get(path)
}
